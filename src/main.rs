fn main() {
    std::process::exit(exp::cli::main(std::env::args_os()));
}
