//! `exp models`: every architecture with its parameter count.

use super::{exit, table};
use crate::models::attr_net::param_count;
use crate::spec::Net;

/// Print every architecture with its parameter count
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attributes (M) the nets predict
    #[arg(short, long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=200))]
    attributes: u16,
    /// List the 40 CelebA attribute names and their face regions
    #[arg(long = "attribute-names")]
    names: bool,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

/// Table 3's printed parameter counts.
fn paper(net: Net) -> &'static str {
    match net {
        Net::Tnet => "19M",
        Net::Snet1 => "6M",
        Net::Snet2 => "2M",
        Net::Snet3 => "0.27M",
    }
}

pub fn exec(args: &Args) -> anyhow::Result<i32> {
    if args.json {
        let m = args.attributes as usize;
        let out: Vec<serde_json::Value> = if args.names {
            crate::attributes::CELEBA
                .iter()
                .enumerate()
                .map(|(j, name)| {
                    serde_json::json!({
                        "index": j,
                        "attribute": name,
                        "region": format!("{:?}", crate::attributes::region(j)).to_lowercase(),
                    })
                })
                .collect()
        } else {
            let mut rows: Vec<serde_json::Value> = Net::ALL
                .iter()
                .map(|&net| {
                    serde_json::json!({
                        "net": net.as_str(),
                        "params": param_count(net, m),
                        "paper": paper(net),
                    })
                })
                .collect();
            let (paw, subnet, fusion) = crate::models::paw::param_count(m);
            rows.push(serde_json::json!({
                "net": "paw", "params": paw, "paper": "11M",
                "subnet_params": subnet, "fusion_params": fusion,
            }));
            rows
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    if args.names {
        let mut t = table(&["#", "attribute", "region"]);
        for (j, name) in crate::attributes::CELEBA.iter().enumerate() {
            t.add_row(vec![
                j.to_string(),
                name.to_string(),
                format!("{:?}", crate::attributes::region(j)).to_lowercase(),
            ]);
        }
        println!("{t}");
        return Ok(exit::OK);
    }
    let mut t = table(&["net", "layers (Table 3)", "params", "paper"]);
    for net in Net::ALL {
        let cfg = crate::models::AttrNetConfig::new(net, args.attributes as usize);
        let layers: Vec<String> = cfg
            .pooled
            .iter()
            .chain(&cfg.top)
            .map(|s| format!("{k}x{k}x{}({})", s.channels, s.repeat, k = s.kernel))
            .collect();
        t.add_row(vec![
            net.as_str().to_string(),
            layers.join(" "),
            format!(
                "{:.3}M",
                param_count(net, args.attributes as usize) as f64 / 1e6
            ),
            paper(net).into(),
        ]);
    }
    let m = args.attributes as usize;
    let (paw, subnet, fusion) = crate::models::paw::param_count(m);
    t.add_row(vec![
        "paw".into(),
        format!("{m} part subnets + 1 whole subnet (snet3 each, {subnet} params) + RSL + ARL ({fusion} params)"),
        format!("{:.3}M", paw as f64 / 1e6),
        "11M".into(),
    ]);
    println!("{t}");
    println!(
        "block-diagonal FC: attribute j sees only its own 32 maps (GAP), so its CAM is sum_i w_ji F_i"
    );
    println!(
        "the paper prints 19M/6M/2M/0.27M for M = 40; Table 3's layers with biases count as above"
    );
    Ok(exit::OK)
}
