//! `salescast models list | show | history`: the versions with their metrics,
//! which one is champion, and the decision log.

use serde::Serialize;

use crate::registry::{Decision, Manifest, Registry};

#[derive(Debug, Serialize)]
pub struct VersionList {
    pub model: String,
    pub champion: Option<String>,
    pub versions: Vec<Manifest>,
}

#[derive(Debug, Serialize)]
pub struct VersionDetail {
    pub champion: bool,
    pub manifest: Manifest,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub model: String,
    pub decisions: Vec<Decision>,
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
