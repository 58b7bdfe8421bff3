fn main() {
    // Like other Unix tools, end quietly when a reader such as `head` closes
    // the pipe, instead of panicking on the failed write.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(exp::cli::main(std::env::args_os()));
}
