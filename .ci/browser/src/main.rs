//! Drives `exp ui` in headless Chromium through chromedriver and checks what
//! a researcher does there: the runs table sorts and filters, two runs'
//! curves overlay in the comparison, no view logs a script error. Saves a
//! screenshot of each view.
//!
//!   exp-browser-check EXP_BINARY SCREENSHOT_DIR

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

type Result<T> = std::result::Result<T, String>;

/// Kills a child process when dropped (the UI server, chromedriver).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SPEC: &str = r#"[experiment]
name = "browser"
seed = 3

[data]
image-size = 32
train-images = 64
val-images = 16
test-images = 16

[train]
epochs = 2
batch-size = 16
lr = 0.01

[[stage]]
id = "train"
kind = "train"

[[stage]]
id = "eval"
kind = "evaluate"
model = "train"
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn wait_for_port(port: u16, what: &str) -> Result<()> {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{what} did not listen on port {port}"))
}

/// Two runs of a tiny spec that differ in learning rate.
fn results(exp: &Path, dir: &Path) -> Result<()> {
    std::fs::write(dir.join("spec.toml"), SPEC).map_err(|e| e.to_string())?;
    let out = Command::new(exp)
        .current_dir(dir)
        .args(["run", "spec.toml", "-s", "train.lr=0.1,0.01"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exp.display()))?;
    if !out.status.success() {
        return Err(format!(
            "exp run failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Script errors the page recorded (app.html collects them in `window.__errors`).
async fn errors(c: &Client) -> Result<Vec<String>> {
    let v = c
        .execute("return window.__errors || ['no error hook: app.html not loaded?'];", vec![])
        .await
        .map_err(|e| e.to_string())?;
    Ok(v.as_array()
        .map(|a| a.iter().map(|x| x.to_string()).collect())
        .unwrap_or_default())
}

async fn rows(c: &Client) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for row in c
        .find_all(Locator::Css("#tbl tr"))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .skip(1)
    {
        out.push(row.text().await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// The run ids of the runs table's rows (each row's text starts with it).
fn ids_of(rows: &[String]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r.split_whitespace().next())
        .map(String::from)
        .collect()
}

async fn shot(c: &Client, dir: &Path, name: &str) -> Result<()> {
    let png = c.screenshot().await.map_err(|e| e.to_string())?;
    std::fs::write(dir.join(name), png).map_err(|e| e.to_string())
}

async fn check(c: &Client, base: &str, shots: &Path) -> Result<()> {
    let step = |what: &str, ok: bool, detail: String| -> Result<()> {
        if ok {
            println!("ok   {what}");
            Ok(())
        } else {
            Err(format!("FAIL {what}: {detail}"))
        }
    };
    c.goto(&format!("{base}#/")).await.map_err(|e| e.to_string())?;
    c.wait()
        .for_element(Locator::Css("#tbl tr + tr"))
        .await
        .map_err(|e| format!("the runs table never filled: {e}"))?;
    let all = rows(c).await?;
    step("the runs table lists both runs", all.len() == 2, format!("{all:?}"))?;

    // Sorting: the run column, clicked twice, reverses the order.
    let header = |i: usize| format!("#tbl th[data-i=\"{i}\"]");
    c.find(Locator::Css(&header(1))).await.map_err(|e| e.to_string())?.click().await.map_err(|e| e.to_string())?;
    let first = rows(c).await?;
    c.find(Locator::Css(&header(1))).await.map_err(|e| e.to_string())?.click().await.map_err(|e| e.to_string())?;
    let second = rows(c).await?;
    let mut reversed = first.clone();
    reversed.reverse();
    step("clicking a column header sorts, twice reverses", first != second && second == reversed, format!("{first:?} then {second:?}"))?;

    // Filtering by a parameter.
    let filter = c.find(Locator::Css("#filter")).await.map_err(|e| e.to_string())?;
    filter.send_keys("train.lr=0.1").await.map_err(|e| e.to_string())?;
    let shown = rows(c).await?;
    step("filtering by train.lr=0.1 leaves one run", shown.len() == 1, format!("{shown:?}"))?;
    filter.clear().await.map_err(|e| e.to_string())?;
    filter.send_keys(" ").await.map_err(|e| e.to_string())?;
    shot(c, shots, "runs.png").await?;
    let e = errors(c).await?;
    step("the runs view logs no script error", e.is_empty(), format!("{e:?}"))?;

    // Select both runs and compare: one curve per run, overlaid.
    for cb in c.find_all(Locator::Css("#tbl input[data-id]")).await.map_err(|e| e.to_string())? {
        cb.click().await.map_err(|e| e.to_string())?;
    }
    c.find(Locator::Css("#cmp")).await.map_err(|e| e.to_string())?.click().await.map_err(|e| e.to_string())?;
    c.wait()
        .for_element(Locator::Css("polyline"))
        .await
        .map_err(|e| format!("the comparison drew no curve: {e}"))?;
    let lines = c.find_all(Locator::Css("polyline")).await.map_err(|e| e.to_string())?;
    step("compare overlays both runs' curves", lines.len() >= 2, format!("{} lines", lines.len()))?;
    shot(c, shots, "compare.png").await?;
    let e = errors(c).await?;
    step("the compare view logs no script error", e.is_empty(), format!("{e:?}"))?;

    // The same selection's report tables: a row per configuration, never pooled.
    c.goto(&format!("{base}#/tables/{}", ids_of(&all).join(","))).await.map_err(|e| e.to_string())?;
    c.wait()
        .for_element(Locator::XPath("//h3[text()='Evaluations: mean accuracy (%)']"))
        .await
        .map_err(|e| format!("the tables view showed no evaluations table: {e}"))?;
    let cells = c.find_all(Locator::Css("#view td")).await.map_err(|e| e.to_string())?;
    let mut text = Vec::new();
    for cell in cells {
        text.push(cell.text().await.map_err(|e| e.to_string())?);
    }
    let row_of = |lr: &str| text.iter().any(|t| t == &format!("train.lr={lr}"));
    step("the tables view gives each learning rate its own row", row_of("0.1") && row_of("0.01"), format!("{text:?}"))?;
    shot(c, shots, "tables.png").await?;
    let e = errors(c).await?;
    step("the tables view logs no script error", e.is_empty(), format!("{e:?}"))?;

    // A run's page and the claims page.
    let id = ids_of(&all).remove(0);
    c.goto(&format!("{base}#/run/{id}")).await.map_err(|e| e.to_string())?;
    c.wait().for_element(Locator::Css("#stages table")).await.map_err(|e| format!("run page: {e}"))?;
    shot(c, shots, "run.png").await?;
    let e = errors(c).await?;
    step("the run view logs no script error", e.is_empty(), format!("{e:?}"))?;
    c.goto(&format!("{base}#/claims")).await.map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let e = errors(c).await?;
    step("the claims view logs no script error", e.is_empty(), format!("{e:?}"))?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: exp-browser-check EXP_BINARY SCREENSHOT_DIR");
        std::process::exit(2);
    }
    let exp = std::fs::canonicalize(&args[1]).expect("the exp binary");
    let shots = PathBuf::from(&args[2]);
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    let dir = std::env::temp_dir().join(format!("exp-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp folder");
    let outcome = async {
        results(&exp, &dir)?;
        let ui_port = free_port();
        let _ui = Guard(
            Command::new(&exp)
                .current_dir(&dir)
                .args(["ui", "--port", &ui_port.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("exp ui: {e}"))?,
        );
        wait_for_port(ui_port, "exp ui").await?;
        let wd_port = free_port();
        let _driver = Guard(
            Command::new("chromedriver")
                .arg(format!("--port={wd_port}"))
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("chromedriver (apt-get install chromium-driver): {e}"))?,
        );
        wait_for_port(wd_port, "chromedriver").await?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"]}),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{wd_port}"))
            .await
            .map_err(|e| format!("WebDriver session: {e}"))?;
        let result = check(&client, &format!("http://127.0.0.1:{ui_port}/"), &shots).await;
        let _ = client.close().await;
        result
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    match outcome {
        Ok(()) => println!("exp ui: every browser check passed; screenshots in {}", shots.display()),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
