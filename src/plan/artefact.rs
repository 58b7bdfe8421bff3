//! What each stage's entry will hold, derived from the resolved spec before
//! anything runs. An edge that cannot work — a backbone of another width, an
//! ensemble member trained on other labels, a PaW head asked of a plain net —
//! is a plan error pointing at the stage's table, not a failure after the
//! upstream stages have trained for an hour.

use std::collections::BTreeMap;

use crate::spec::{Head, MEMBER_ROLE, Net, StageConfig, StageKind, StageSpec};

/// The labels a data set or a model carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// One class per image (birds) rather than independent attributes.
    pub single: bool,
    /// Attribute indices, or class labels `0..C`.
    pub ids: Vec<usize>,
    /// Birds: the generator's class of label 0.
    pub class_offset: u32,
}

impl Labels {
    fn describe(&self) -> String {
        let (n, what) = (
            self.ids.len(),
            if self.single { "class" } else { "attribute" },
        );
        match (n, self.single) {
            (1, _) => format!("1 {what}"),
            (_, true) => format!("{n} classes"),
            (_, false) => format!("{n} attributes"),
        }
    }
}

/// A stage's output, as far as the plan can know it.
#[derive(Debug, Clone, PartialEq)]
pub enum Artefact {
    /// Images with labels; `cropped` when every image is already a crop.
    Data { labels: Labels, cropped: bool },
    /// One attribute (or class) net.
    Model {
        net: Net,
        width: f64,
        labels: Labels,
        /// Trained with the MNL branch (`train-frl`, `mnl = true`).
        mnl: bool,
    },
    /// Patches per attribute, or one box per image on single-label data.
    Regions { labels: Labels },
    /// Part subnets (+ the whole net); `fused` once RSL + ARL are trained.
    Paw {
        labels: Labels,
        fused: bool,
        /// Parts on a fixed grid rather than one per attribute.
        grid: bool,
    },
    /// Evaluation scores.
    Scores,
    /// A command's declared outputs.
    Files,
}

/// Derive every stage's artefact in DAG order, checking each edge against
/// what its upstream will hold. Returns the stage and the message of the
/// first edge that cannot work.
pub fn check(order: &[StageSpec]) -> Result<(), (String, String)> {
    let mut out: BTreeMap<&str, Artefact> = BTreeMap::new();
    for s in order {
        let a = derive(s, &out).map_err(|m| (s.id.clone(), m))?;
        if let Some(a) = a {
            out.insert(&s.id, a);
        }
    }
    Ok(())
}

/// One stage's artefact from its upstream ones. `None` where an input it
/// needs is not known (a test's synthetic edges).
fn derive(s: &StageSpec, done: &BTreeMap<&str, Artefact>) -> Result<Option<Artefact>, String> {
    let input = |role: &str| s.inputs.get(role).and_then(|id| done.get(id.as_str()));
    let data = input("data").and_then(|a| match a {
        Artefact::Data { labels, cropped } => Some((labels, *cropped)),
        _ => None,
    });
    let model = |role: &str| {
        input(role).and_then(|a| match a {
            Artefact::Model {
                net, width, labels, ..
            } => Some((*net, *width, labels)),
            _ => None,
        })
    };
    let paw_labels = |role: &str| {
        input(role).and_then(|a| match a {
            Artefact::Paw { labels, .. } => Some(labels.clone()),
            _ => None,
        })
    };
    Ok(match &s.config {
        StageConfig::GenerateData(d) | StageConfig::ReadData(d) => Some(Artefact::Data {
            labels: Labels {
                single: d.single_label(),
                ids: d.attributes.clone(),
                class_offset: d.class_offset,
            },
            cropped: d.real.as_ref().is_some_and(|r| r.crop == "bbox"),
        }),
        StageConfig::CropData { .. } => {
            let Some((labels, cropped)) = data else {
                return Ok(None);
            };
            if cropped {
                return Err(format!(
                    "`crop-data` needs full images, and `data = \"{}\"` is already cropped (a `crop-data` stage, or CelebA read with `crop = \"bbox\"`)",
                    s.inputs["data"]
                ));
            }
            if let Some(Artefact::Regions { labels: r }) = input("regions")
                && !r.single
            {
                return Err(format!(
                    "`regions = \"{}\"` localizes {} (one patch per attribute); `crop-data` needs one box per image, from a `localize` stage on single-label data (birds)",
                    s.inputs["regions"],
                    r.describe()
                ));
            }
            Some(Artefact::Data {
                labels: labels.clone(),
                cropped: true,
            })
        }
        StageConfig::Train(t) | StageConfig::TrainFrl { train: t, .. } => {
            let Some((labels, _)) = data else {
                return Ok(None);
            };
            if let Some((net, width, _)) = model("backbone")
                && (net != t.net || width != t.width)
            {
                return Err(format!(
                    "`backbone = \"{}\"` is a {} at width {width}, this stage trains a {} at width {}: they must match",
                    s.inputs["backbone"],
                    net.as_str(),
                    t.net.as_str(),
                    t.width
                ));
            }
            if let Some((_, _, from)) = model("from")
                && from != labels
            {
                return Err(format!(
                    "`from = \"{}\"` predicts {}, this stage's data has {}: they must be the same labels",
                    s.inputs["from"],
                    from.describe(),
                    labels.describe()
                ));
            }
            // Continuing a net keeps its architecture and branches.
            if let Some(Artefact::Model {
                net, width, mnl, ..
            }) = input("from")
            {
                return Ok(Some(Artefact::Model {
                    net: *net,
                    width: *width,
                    labels: labels.clone(),
                    mnl: *mnl,
                }));
            }
            Some(Artefact::Model {
                net: t.net,
                width: t.width,
                labels: labels.clone(),
                mnl: matches!(s.config, StageConfig::TrainFrl { mnl: true, .. }),
            })
        }
        StageConfig::Compress { train, .. } => model("teacher").map(|(_, _, labels)| {
            // The student learns the teacher's labels.
            Artefact::Model {
                net: train.net,
                width: train.width,
                labels: labels.clone(),
                mnl: false,
            }
        }),
        // The model's labels: it is the model's maps that are localised.
        StageConfig::Localize { .. } => model("model").map(|(_, _, labels)| Artefact::Regions {
            labels: labels.clone(),
        }),
        StageConfig::TrainParts { grid, .. } => {
            let Some((_, _, labels)) = model("whole") else {
                return Ok(None);
            };
            if let Some(Artefact::Regions { labels: r }) = input("regions")
                && r != labels
            {
                return Err(format!(
                    "`regions = \"{}\"` localizes {}, `whole = \"{}\"` predicts {}: part subnets need a region for each of the whole net's labels",
                    s.inputs["regions"],
                    r.describe(),
                    s.inputs["whole"],
                    labels.describe()
                ));
            }
            Some(Artefact::Paw {
                labels: labels.clone(),
                fused: false,
                grid: grid.is_some(),
            })
        }
        StageConfig::TrainFusion(_) | StageConfig::FinetunePaw(_) => {
            let role = if s.kind == StageKind::TrainFusion {
                "parts"
            } else {
                "fusion"
            };
            let grid = matches!(input(role), Some(Artefact::Paw { grid: true, .. }));
            paw_labels(role).map(|labels| Artefact::Paw {
                labels,
                fused: true,
                grid,
            })
        }
        StageConfig::Evaluate(cfg) => {
            if let Some(m) = input("model") {
                head_fits(cfg.head, m).map_err(|why| {
                    format!(
                        "head `{}` {why}, and `model = \"{}\"` is not one",
                        cfg.head.as_str(),
                        s.inputs["model"]
                    )
                })?;
                let labels = labels_of(m);
                for (role, id) in s.inputs.iter().filter(|(r, _)| r.starts_with(MEMBER_ROLE)) {
                    let Some(member) = done.get(id.as_str()) else {
                        continue;
                    };
                    // Every member is scored with the same head.
                    head_fits(cfg.head, member).map_err(|why| {
                        format!(
                            "head `{}` {why}, and ensemble member `{id}` is not one",
                            cfg.head.as_str()
                        )
                    })?;
                    if let (Some(a), Some(b)) = (&labels, labels_of(member))
                        && a != &b
                    {
                        return Err(format!(
                            "ensemble member `{id}` ({role}) predicts {}, `model` predicts {}: an ensemble averages the same labels",
                            b.describe(),
                            a.describe()
                        ));
                    }
                }
            }
            Some(Artefact::Scores)
        }
        StageConfig::Command(_) => Some(Artefact::Files),
    })
}

fn labels_of(a: &Artefact) -> Option<Labels> {
    match a {
        Artefact::Model { labels, .. } | Artefact::Paw { labels, .. } => Some(labels.clone()),
        _ => None,
    }
}

/// Whether `evaluate`'s head can score this model; else what it needs.
fn head_fits(head: Head, model: &Artefact) -> Result<(), &'static str> {
    match (head, model) {
        (Head::Loc, Artefact::Model { .. }) => Ok(()),
        (Head::Loc, _) => Err("needs an attribute net (`train`, `train-frl` or `compress`)"),
        (Head::Mnl, Artefact::Model { mnl: true, .. }) => Ok(()),
        (Head::Mnl, _) => Err("needs a `train-frl` model trained with `mnl = true`"),
        (Head::Paw, Artefact::Paw { fused: true, .. }) => Ok(()),
        (Head::Paw, _) => Err("needs a fused model (`train-fusion` or `finetune-paw`)"),
        (Head::WholeOnly, Artefact::Paw { .. }) => Ok(()),
        (Head::PartOnly, Artefact::Paw { grid: false, .. }) => Ok(()),
        (Head::PartOnly, Artefact::Paw { grid: true, .. }) => {
            Err("needs attribute-linked parts (`train-parts` with `regions`, not `grid`)")
        }
        (Head::WholeOnly | Head::PartOnly, _) => {
            Err("needs a PaW model (`train-parts`, `train-fusion` or `finetune-paw`)")
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{Dag, PlanError};

    /// The plan error of a spec made of `[[stage]]` tables after a face data set.
    fn plan_error(stages: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let text = format!("[experiment]\nname = \"t\"\n\n[train]\nepochs = 1\n\n{stages}");
        std::fs::write(&path, text).unwrap();
        let spec = crate::spec::load(&path, &[]).unwrap();
        match Dag::build(&spec) {
            Err(e @ PlanError::Mismatch { .. }) => e.to_string(),
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    fn plans(stages: &str) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, format!("[experiment]\nname = \"t\"\n\n{stages}")).unwrap();
        Dag::build(&crate::spec::load(&path, &[]).unwrap()).is_ok()
    }

    const PRE: &str = "[[stage]]\nid = \"pre\"\nkind = \"train\"\nnet = \"tnet\"\nwidth = 0.25\n\n";

    #[test]
    fn a_backbone_of_another_width_is_a_plan_error() {
        let e = plan_error(&format!(
            "{PRE}[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\nwidth = 0.5\nbackbone = \"pre\"\n"
        ));
        assert_eq!(
            e,
            "stage `frl`: `backbone = \"pre\"` is a tnet at width 0.25, this stage trains a tnet at width 0.5: they must match"
        );
        assert!(plans(&format!(
            "{PRE}[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\nwidth = 0.25\nbackbone = \"pre\"\n"
        )));
    }

    #[test]
    fn continuing_a_net_on_other_labels_is_a_plan_error() {
        let e = plan_error(&format!(
            "[[stage]]\nid = \"other\"\nkind = \"generate-data\"\nattributes = [\"Male\"]\n\n{PRE}[[stage]]\nid = \"more\"\nkind = \"train\"\nfrom = \"pre\"\ndata = \"other\"\n"
        ));
        assert!(
            e.starts_with("stage `more`: `from = \"pre\"` predicts 40 attributes, this stage's data has 1 attribute"),
            "{e}"
        );
    }

    #[test]
    fn a_head_the_model_lacks_is_a_plan_error() {
        let e = plan_error(&format!(
            "{PRE}[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"pre\"\nhead = \"mnl\"\n"
        ));
        assert_eq!(
            e,
            "stage `eval`: head `mnl` needs a `train-frl` model trained with `mnl = true`, and `model = \"pre\"` is not one"
        );
        let e = plan_error(&format!(
            "{PRE}[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"pre\"\nhead = \"paw\"\n"
        ));
        assert!(e.contains("head `paw` needs a fused model"), "{e}");
        // The MNL head of an MNL-trained FRL plans.
        assert!(plans(
            "[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"frl\"\nhead = \"mnl\"\n"
        ));
    }

    #[test]
    fn a_continued_net_keeps_its_architecture_and_branches() {
        // `more` continues the MNL-trained TNet: its MNL head and its width
        // are the upstream's, whatever `more`'s own keys would say.
        let frl = "[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\nwidth = 0.25\n\n[[stage]]\nid = \"more\"\nkind = \"train\"\nfrom = \"frl\"\n\n";
        assert!(plans(&format!(
            "{frl}[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"more\"\nhead = \"mnl\"\n"
        )));
        assert!(plans(&format!(
            "{frl}[[stage]]\nid = \"again\"\nkind = \"train-frl\"\nwidth = 0.25\nbackbone = \"more\"\n"
        )));
    }

    #[test]
    fn an_ensemble_member_without_the_head_is_a_plan_error() {
        let e = plan_error(
            "[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\n\n[[stage]]\nid = \"plain\"\nkind = \"train\"\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"frl\"\nensemble = [\"plain\"]\nhead = \"mnl\"\n",
        );
        assert!(e.contains("and ensemble member `plain` is not one"), "{e}");
    }

    #[test]
    fn part_only_on_grid_parts_is_a_plan_error() {
        let e = plan_error(
            "[[stage]]\nid = \"whole\"\nkind = \"train\"\n\n[[stage]]\nid = \"parts\"\nkind = \"train-parts\"\nwhole = \"whole\"\ngrid = 4\npart-size = 16\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"parts\"\nhead = \"part-only\"\n",
        );
        assert!(
            e.contains("needs attribute-linked parts (`train-parts` with `regions`, not `grid`)"),
            "{e}"
        );
    }

    #[test]
    fn an_ensemble_of_other_labels_is_a_plan_error() {
        let e = plan_error(
            "[[stage]]\nid = \"other\"\nkind = \"generate-data\"\nattributes = [\"Male\"]\n\n[[stage]]\nid = \"a\"\nkind = \"train\"\n\n[[stage]]\nid = \"b\"\nkind = \"train\"\ndata = \"other\"\n\n[[stage]]\nid = \"eval\"\nkind = \"evaluate\"\nmodel = \"a\"\nensemble = [\"b\"]\n",
        );
        assert!(
            e.starts_with("stage `eval`: ensemble member `b` (member-1) predicts 1 attribute, `model` predicts 40 attributes"),
            "{e}"
        );
    }

    #[test]
    fn cropping_with_face_regions_is_a_plan_error() {
        let e = plan_error(
            "[[stage]]\nid = \"frl\"\nkind = \"train-frl\"\n\n[[stage]]\nid = \"loc\"\nkind = \"localize\"\nmodel = \"frl\"\n\n[[stage]]\nid = \"crop\"\nkind = \"crop-data\"\nregions = \"loc\"\n",
        );
        assert!(e.contains("`crop-data` needs one box per image"), "{e}");
        let e = plan_error(
            "[[stage]]\nid = \"c1\"\nkind = \"crop-data\"\n\n[[stage]]\nid = \"c2\"\nkind = \"crop-data\"\ndata = \"c1\"\n",
        );
        assert_eq!(
            e,
            "stage `c2`: `crop-data` needs full images, and `data = \"c1\"` is already cropped (a `crop-data` stage, or CelebA read with `crop = \"bbox\"`)"
        );
    }

    #[test]
    fn every_committed_spec_plans() {
        // Specs over real data sets need their roots; the rest must plan.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let mut planned = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            match crate::spec::load(&path, &[]) {
                Ok(spec) => {
                    if let Err(e) = Dag::build(&spec) {
                        panic!("{name}: {e}");
                    }
                    planned += 1;
                }
                // Real CelebA and CUB-200 are not on this machine.
                Err(_) if ["paper.toml", "cub_mnl_full.toml"].contains(&name.as_str()) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        assert!(planned >= 18, "only {planned} specs loaded");
    }
}
