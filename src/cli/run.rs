//! `exp run SPEC`: execute (or reuse) every stage of a spec.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::{Cli, exit, percent, table};
use crate::device::Devices;
use crate::exec::{self, RunOptions, progress::human_seconds};
use crate::spec::ExecutorKind;

/// Run every stage of a spec, reusing cached results
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment spec (TOML)
    spec: PathBuf,
    /// Override a spec value: `train.lr=0.01`, `data.image-size=48`, `stage.<id>.epochs=2`
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Recompute every stage even when cached (replaces the entries)
    #[arg(long)]
    force: bool,
    /// Stages to run at once (locally a computing stage holds a device: one at a
    /// time on the CPU, one per GPU; cache hits and waits overlap)
    #[arg(short, long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// `cpu` (burn flex), `tch-cpu` or `cuda:N` (libtorch; build with `--features tch`);
    /// several GPUs as `cuda:0,cuda:1` or `cuda:all` (one stage per free GPU)
    #[arg(long, default_value = "cpu")]
    device: Devices,
    /// Where stages run: `local` (this machine) or `slurm` (one cluster job
    /// per stage, same cache on a shared filesystem) [default: the spec's
    /// `[executor] kind`, else local]
    #[arg(long, value_enum)]
    executor: Option<ExecutorChoice>,
    /// Print the run record(s) as JSON instead of tables
    #[arg(long)]
    json: bool,
    /// Run only this stage and the stages it reads from (repeatable)
    #[arg(long = "stage", value_name = "ID")]
    stages: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExecutorChoice {
    Local,
    Slurm,
}

pub fn exec(cli: &Cli, args: &Args) -> anyhow::Result<i32> {
    let mut points = crate::spec::load_points(&args.spec, &args.set)?;
    for spec in &mut points {
        if let Err(e) = spec.select_stages(&args.stages) {
            eprintln!("error: --stage: {e}");
            return Ok(exit::BAD_INPUT);
        }
    }
    for spec in &points {
        super::dag_of(spec, &args.spec)?;
        precision_fits(spec, &args.device)?;
    }
    let sweep = (points.len() > 1).then(|| crate::runs::new_id(&points[0].name));
    let cancel = on_ctrl_c()?;
    let slurm = match args.executor {
        Some(ExecutorChoice::Slurm) => true,
        Some(ExecutorChoice::Local) => false,
        None => points[0].executor.kind == ExecutorKind::Slurm,
    };
    let opts = |spec: &crate::spec::Spec| RunOptions {
        force: args.force,
        // Enough workers to keep every listed GPU busy.
        jobs: (args.jobs as usize).max(args.device.list().len()),
        devices: args.device.clone(),
        cache_root: cli.cache_root(),
        results: cli.results.clone(),
        progress: if args.json {
            exec::progress::Mode::Quiet
        } else if std::io::stderr().is_terminal() && !(slurm && points.len() > 1) {
            exec::progress::Mode::Bars
        } else {
            // Several runs at once (a sweep on a cluster) share stderr line by line.
            exec::progress::Mode::Lines
        },
        sweep: sweep.clone(),
        cancel: cancel.clone(),
        // Concurrent points' lines need to say which point they are about.
        label: (slurm && points.len() > 1).then(|| spec.point.join(" ")),
    };
    let records = if slurm {
        run_on_slurm(cli, args, &points, &opts, &cancel)?
    } else {
        let mut records = Vec::new();
        for (i, spec) in points.iter().enumerate() {
            if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            if sweep.is_some() && !args.json {
                println!(
                    "sweep point {}/{}: {}",
                    i + 1,
                    points.len(),
                    spec.point.join(" ")
                );
            }
            let record = exec::run(spec, &opts(spec))?;
            if !args.json {
                print_record(cli, &record);
            }
            records.push(record);
        }
        records
    };
    if args.json {
        let out = if records.len() == 1 {
            serde_json::to_value(&records[0])?
        } else {
            serde_json::to_value(&records)?
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if let Some(id) = &sweep {
        let mut t = table(&["point", "run", "status", "results"]);
        for r in &records {
            let evals: Vec<String> = r
                .stages
                .iter()
                .filter(|s| s.summary["mean_accuracy"].is_number())
                .map(|s| format!("{} {}", s.id, percent(s.summary["mean_accuracy"].as_f64())))
                .collect();
            t.add_row(vec![
                r.point.join(" "),
                r.id.clone(),
                r.status.clone(),
                evals.join(", "),
            ]);
        }
        println!("sweep {id}:\n{t}");
        if let Some(sel) = &points[0].select {
            print_best(&records, sel);
        }
    }
    Ok(if cancel.load(std::sync::atomic::Ordering::SeqCst) {
        exit::CANCELLED
    } else if records.iter().all(|r| r.status == "ok") {
        exit::OK
    } else {
        exit::STAGE_FAILED
    })
}

/// Every sweep point at once, each stage a Slurm job; one `squeue` per poll
/// for all of them.
fn run_on_slurm(
    cli: &Cli,
    args: &Args,
    points: &[crate::spec::Spec],
    opts: &(dyn Fn(&crate::spec::Spec) -> RunOptions + Sync),
    cancel: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<crate::runs::RunRecord>> {
    let cache = crate::cache::Cache::open(&cli.cache_root())?;
    let queue = exec::slurm::Queue::new(
        points[0].executor.poll,
        points[0].executor.parallelism,
        cancel.clone(),
    );
    let executors = points
        .iter()
        .map(|spec| {
            exec::slurm::Slurm::new(
                spec,
                cache.clone(),
                queue.clone(),
                args.device.to_string(),
                args.force,
            )
            .map_err(|e| anyhow::anyhow!(e))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let results: Vec<Result<crate::runs::RunRecord, exec::ExecError>> = std::thread::scope(|s| {
        let handles: Vec<_> = points
            .iter()
            .zip(&executors)
            .map(|(spec, slurm)| s.spawn(move || exec::run_with(spec, &opts(spec), slurm)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sweep point's scheduler panicked"))
            .collect()
    });
    let mut records = Vec::new();
    for r in results {
        let record = r?;
        if !args.json {
            if points.len() > 1 {
                println!("sweep point: {}", record.point.join(" "));
            }
            print_record(cli, &record);
        }
        records.push(record);
    }
    Ok(records)
}

/// The first Ctrl-C sets the returned flag: no more stages start, cluster
/// jobs are cancelled, and the run record says `cancelled`. A second one
/// exits at once (status 130), as an interrupted shell command does.
fn on_ctrl_c() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::SIGINT;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(SIGINT, 130, flag.clone())?;
    signal_hook::flag::register(SIGINT, flag.clone())?;
    Ok(flag)
}

fn print_record(cli: &Cli, record: &crate::runs::RunRecord) {
    let mut t = table(&["stage", "kind", "status", "time", "result"]);
    for s in &record.stages {
        // The first line here; a failed command's output tail below the table.
        let result = match &s.error {
            Some(e) => e.lines().next().unwrap_or_default().to_string(),
            None => describe(&s.summary),
        };
        t.add_row(vec![
            s.id.clone(),
            s.kind.clone(),
            s.status.clone(),
            human_seconds(s.seconds),
            result,
        ]);
    }
    println!("{t}");
    for s in &record.stages {
        if let Some(more) = s.error.as_deref().and_then(|e| e.split_once('\n')) {
            println!("{} ({}):\n{}", s.id, s.status, more.1);
        }
    }
    let ran = record.stages.iter().filter(|s| s.status == "ran").count();
    let cached = record
        .stages
        .iter()
        .filter(|s| s.status == "cached")
        .count();
    println!(
        "run {} {}: {ran} ran, {cached} cached; record in {}",
        record.id,
        record.status,
        record.dir(&cli.results).display()
    );
}

/// One line about a stage's summary, whatever its kind.
pub fn describe(summary: &serde_json::Value) -> String {
    let f = |k: &str| summary[k].as_f64();
    if let Some(e) = crate::metrics::EvalSummary::of(summary) {
        let what = if e.single_label() {
            "top-1"
        } else {
            "mean acc"
        };
        let mut line = format!("{}: {what} {}", e.head, percent(Some(e.mean_accuracy)));
        if let Some(m) = e.majority_accuracy {
            line += &format!(" (majority {})", percent(Some(m)));
        }
        if let Some(b) = e.balanced_accuracy {
            line += &format!(", balanced {}", percent(Some(b)));
        }
        return line;
    }
    // A command stage's own metrics may name a mean accuracy too.
    if let Some(acc) = f("mean_accuracy") {
        let mut line = format!("mean acc {}", percent(Some(acc)));
        if let Some(m) = f("majority_accuracy") {
            line += &format!(" (majority {})", percent(Some(m)));
        }
        return line;
    }
    let mut parts = Vec::new();
    if let Some(n) = summary["images"]
        .as_u64()
        .filter(|_| summary.get("dataset").is_some())
    {
        parts.push(format!("{n} images"));
    }
    if let (Some(n), Some(rule)) = (summary["images"].as_u64(), summary["boxes"].as_str()) {
        parts.push(format!("{n} images cropped to {rule} boxes"));
    }
    if let Some(p) = summary["params"].as_u64() {
        parts.push(format!("{:.3}M params", p as f64 / 1e6));
    }
    if let Some(a) = f("val_accuracy") {
        parts.push(format!("val acc {}", percent(Some(a))));
    }
    if let Some(a) = f("val_accuracy_mnl") {
        parts.push(format!("MNL branch {}", percent(Some(a))));
    }
    if let Some(a) = f("val_accuracy_own_attribute") {
        parts.push(format!(
            "{} parts, own-attribute val acc {}",
            summary["parts"],
            percent(Some(a))
        ));
    }
    if let Some(a) = f("pointing_game") {
        parts.push(format!("pointing game {}", percent(Some(a))));
    }
    if let Some(a) = f("maxboxacc") {
        parts.push(format!("MaxBoxAcc {}", percent(Some(a))));
    }
    if let (Some(l), Some(g)) = (
        summary["rsl"]["local_part_minus_whole"].as_f64(),
        summary["rsl"]["global_part_minus_whole"].as_f64(),
    ) {
        parts.push(format!("RSL part-whole: local {l:+.2}, global {g:+.2}"));
    }
    if parts.is_empty() {
        // A command stage's own metrics: the first few numbers, as written.
        if let Some(obj) = summary.as_object() {
            parts = obj
                .iter()
                .filter_map(|(k, v)| Some(format!("{k} {}", short(v.as_f64()?))))
                .take(4)
                .collect();
        }
    }
    parts.join(", ")
}

/// A number in four significant figures.
fn short(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        format!("{}", (x * 1e4).round() / 1e4)
    }
}

/// The best configuration of a sweep: grouped over seeds, chosen by the
/// validation stage `sel`, reported with every other evaluation (test).
pub fn best(
    records: &[crate::runs::RunRecord],
    sel: &crate::spec::Selection,
) -> Option<(Vec<String>, f64, Vec<(String, f64, f64)>)> {
    let mut groups: std::collections::BTreeMap<Vec<String>, Vec<&crate::runs::RunRecord>> =
        Default::default();
    for r in records.iter().filter(|r| r.status == "ok") {
        let config: Vec<String> = r
            .point
            .iter()
            .filter(|p| !p.starts_with("experiment.seed="))
            .cloned()
            .collect();
        groups.entry(config).or_default().push(r);
    }
    let score_by = |rs: &[&crate::runs::RunRecord], stage: &str, metric: &str| -> Vec<f64> {
        rs.iter()
            .filter_map(|r| r.stages.iter().find(|s| s.id == stage)?.summary[metric].as_f64())
            .collect()
    };
    let score = |rs: &[&crate::runs::RunRecord], stage: &str| score_by(rs, stage, &sel.metric);
    let mean = |v: &[f64]| crate::report::claims::mean_std(v);
    let (config, runs) = groups
        .into_iter()
        .filter(|(_, rs)| !score(rs, &sel.stage).is_empty())
        .max_by(|a, b| {
            let (x, y) = (
                mean(&score(&a.1, &sel.stage)).0,
                mean(&score(&b.1, &sel.stage)).0,
            );
            if sel.maximise {
                x.total_cmp(&y)
            } else {
                y.total_cmp(&x)
            }
        })?;
    let val = mean(&score(&runs, &sel.stage)).0;
    let others: Vec<(String, f64, f64)> = runs[0]
        .stages
        .iter()
        .filter(|s| s.kind == "evaluate" && s.id != sel.stage)
        .map(|s| {
            let (m, sd) = mean(&score_by(&runs, &s.id, "mean_accuracy"));
            (s.id.clone(), m, sd)
        })
        .collect();
    Some((config, val, others))
}

fn print_best(records: &[crate::runs::RunRecord], sel: &crate::spec::Selection) {
    match best(records, sel) {
        Some((config, val, others)) => {
            let tests: Vec<String> = others
                .iter()
                .map(|(id, m, sd)| format!("{id} {:.2} ± {:.2}%", 100.0 * m, 100.0 * sd))
                .collect();
            let reported = if tests.is_empty() {
                String::new()
            } else {
                format!("; reported: {}", tests.join(", "))
            };
            let value = if sel.metric == "mean_accuracy" {
                format!("val {:.2}%", 100.0 * val)
            } else {
                format!("{} {val:.4}", sel.metric)
            };
            println!(
                "best configuration by `{}` ({}): {} — {value}{reported}",
                sel.stage,
                if sel.maximise { "max" } else { "min" },
                if config.is_empty() {
                    "(spec values)".into()
                } else {
                    config.join(" ")
                },
            );
        }
        None => println!(
            "no successful run has `{}`: no best configuration",
            sel.stage
        ),
    }
}

/// A stage asking for bf16 on the flex CPU backend fails before anything
/// runs, at its table, not after its upstream stages have trained.
fn precision_fits(
    spec: &crate::spec::Spec,
    devices: &crate::device::Devices,
) -> anyhow::Result<()> {
    if devices.first() != crate::device::DeviceChoice::Cpu {
        return Ok(());
    }
    for s in &spec.stages {
        let precision = s
            .config
            .train()
            .and_then(|t| t.precision)
            .unwrap_or_default();
        if precision != crate::vocab::Precision::Fp32 {
            let at = spec
                .stage_locations
                .get(&s.id)
                .cloned()
                .unwrap_or_else(|| spec.path.display().to_string());
            return Err(anyhow::Error::new(crate::device::DeviceError::Precision {
                stage: s.id.clone(),
                precision: precision.as_str().into(),
            })
            .context(at));
        }
    }
    Ok(())
}
