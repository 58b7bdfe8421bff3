//! What a stage's entry will hold, as far as the plan can know it before
//! anything runs: each kind's [`super::Kind::artefact`] derives its own from
//! its upstream ones ([`Upstream`]), and `plan` checks every edge with them.

use std::collections::BTreeMap;

use super::{MEMBER_ROLE, Net};

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
    pub fn describe(&self) -> String {
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

/// A stage's upstream artefacts, by role.
pub struct Upstream<'a> {
    /// The stage's edges: role → upstream stage id.
    pub inputs: &'a BTreeMap<String, String>,
    /// Every artefact derived so far, by stage id.
    pub done: &'a BTreeMap<&'a str, Artefact>,
}

impl Upstream<'_> {
    /// The artefact of a role's upstream, where known.
    pub fn input(&self, role: &str) -> Option<&Artefact> {
        self.inputs
            .get(role)
            .and_then(|id| self.done.get(id.as_str()))
    }

    /// The upstream stage id of a role (for messages).
    pub fn id(&self, role: &str) -> &str {
        self.inputs.get(role).map_or("", String::as_str)
    }

    /// The `data` input's labels and whether it is already cropped.
    pub fn data(&self) -> Option<(&Labels, bool)> {
        match self.input("data")? {
            Artefact::Data { labels, cropped } => Some((labels, *cropped)),
            _ => None,
        }
    }

    /// A role's attribute net: its architecture, width and labels.
    pub fn model(&self, role: &str) -> Option<(Net, f64, &Labels)> {
        match self.input(role)? {
            Artefact::Model {
                net, width, labels, ..
            } => Some((*net, *width, labels)),
            _ => None,
        }
    }

    /// An ensemble's other models: role, stage id and artefact where known.
    pub fn members(&self) -> impl Iterator<Item = (&str, &str, Option<&Artefact>)> {
        self.inputs
            .iter()
            .filter(|(r, _)| r.starts_with(MEMBER_ROLE))
            .map(|(r, id)| (r.as_str(), id.as_str(), self.done.get(id.as_str())))
    }
}

/// The labels a model predicts.
pub fn labels_of(a: &Artefact) -> Option<Labels> {
    match a {
        Artefact::Model { labels, .. } | Artefact::Paw { labels, .. } => Some(labels.clone()),
        _ => None,
    }
}
