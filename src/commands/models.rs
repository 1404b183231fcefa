//! `salescast models list | show | history`: the versions with their metrics,
//! which one is champion, and the decision log.

use serde::Serialize;

use super::Report;
use crate::registry::{Decision, Manifest, Registry};

#[derive(Debug, Serialize)]
pub struct VersionList {
    pub model: String,
    pub champion: Option<String>,
    pub versions: Vec<Manifest>,
}

impl Report for VersionList {
    fn human(&self) -> String {
        let mut text = format!("model {} ({} versions)\n", self.model, self.versions.len());
        text += "  version       family          created              trained through  holdout WAPE\n";
        for m in &self.versions {
            let mark = if self.champion.as_deref() == Some(m.version.as_str()) {
                "*"
            } else {
                " "
            };
            text += &format!(
                "{mark} {}  {:<15} {}  {}       {:.4}\n",
                &m.version[..12],
                m.family.to_string(),
                m.created_at.format("%Y-%m-%d %H:%M:%S"),
                m.lineage.trained_through,
                m.holdout_metrics.wape
            );
        }
        text += "(* champion)";
        text
    }
}

#[derive(Debug, Serialize)]
pub struct VersionDetail {
    pub champion: bool,
    pub manifest: Manifest,
}

impl Report for VersionDetail {
    fn human(&self) -> String {
        let text = serde_json::to_string_pretty(&self.manifest).unwrap_or_default();
        format!("{}{text}", if self.champion { "(champion)\n" } else { "" })
    }
}

#[derive(Debug, Serialize)]
pub struct History {
    pub model: String,
    pub decisions: Vec<Decision>,
}

impl Report for History {
    fn human(&self) -> String {
        let mut text = format!("model {}: {} decisions\n", self.model, self.decisions.len());
        let short = |v: &Option<String>| v.as_deref().map_or("-".to_string(), |v| v[..12].to_string());
        for d in &self.decisions {
            text += &format!(
                "{:>4}  {}  {:<12} {} -> {}  by {}: {}\n",
                d.sequence,
                d.at.format("%Y-%m-%d %H:%M:%S"),
                d.what.kind.as_str(),
                short(&d.what.champion_before),
                short(&d.what.champion_after),
                d.what.actor,
                d.what.reason
            );
        }
        text.trim_end().to_string()
    }
}

pub fn list(registry: &Registry) -> anyhow::Result<VersionList> {
    Ok(VersionList {
        model: registry.model().to_string(),
        champion: registry.champion()?.map(|(c, _)| c.version),
        versions: registry.versions()?,
    })
}

pub fn show(registry: &Registry, prefix: &str) -> anyhow::Result<VersionDetail> {
    let version = registry.resolve(prefix)?;
    let champion = registry.champion()?.is_some_and(|(c, _)| c.version == version);
    Ok(VersionDetail {
        champion,
        manifest: registry.manifest(&version)?,
    })
}

pub fn history(registry: &Registry) -> anyhow::Result<History> {
    Ok(History {
        model: registry.model().to_string(),
        decisions: registry.decisions()?,
    })
}
