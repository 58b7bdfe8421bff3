//! What each stage's entry will hold, derived from the resolved spec before
//! anything runs (each kind's [`crate::spec::Kind::artefact`]). An edge that
//! cannot work — a backbone of another width, an ensemble member trained on
//! other labels, a PaW head asked of a plain net — is a plan error pointing
//! at the stage's table, not a failure after the upstream stages have
//! trained for an hour.

use std::collections::BTreeMap;

use crate::kinds::Upstream;
use crate::spec::StageSpec;

/// Derive every stage's artefact in DAG order, checking each edge against
/// what its upstream will hold. Returns the stage and the message of the
/// first edge that cannot work.
pub fn check(order: &[StageSpec]) -> Result<(), (String, String)> {
    let mut done = BTreeMap::new();
    for s in order {
        let up = Upstream {
            inputs: &s.inputs,
            done: &done,
        };
        if let Some(a) = s.config.artefact(&up).map_err(|m| (s.id.clone(), m))? {
            done.insert(s.id.as_str(), a);
        }
    }
    Ok(())
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
