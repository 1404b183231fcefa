//! `salescast models list | show | history`: the versions with their metrics,
//! which one is champion, and the decision log. Each reads the registry's
//! state first, so a disagreement between pointer and log left by a crash is
//! repaired (and reported) before anything is shown.

use serde::Serialize;

use crate::registry::{Decision, Manifest, Registry, Repair, UnreadableVersion};

#[derive(Debug, Serialize)]
pub struct VersionList {
    pub model: String,
    pub champion: Option<String>,
    pub versions: Vec<Manifest>,
    /// Versions whose manifest does not read back: listed, not loaded.
    pub unreadable: Vec<UnreadableVersion>,
    pub repairs: Vec<Repair>,
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
    pub repairs: Vec<Repair>,
}

pub fn list(registry: &Registry) -> anyhow::Result<VersionList> {
    let state = registry.state()?;
    let listing = registry.versions()?;
    Ok(VersionList {
        model: registry.model().to_string(),
        champion: state.champion.map(|c| c.version),
        versions: listing.whole,
        unreadable: listing.unreadable,
        repairs: state.repairs,
    })
}

pub fn show(registry: &Registry, prefix: &str) -> anyhow::Result<VersionDetail> {
    let version = registry.resolve(prefix)?;
    let champion = registry.state()?.champion_version() == Some(version.as_str());
    Ok(VersionDetail {
        champion,
        manifest: registry.manifest(&version)?,
    })
}

pub fn history(registry: &Registry) -> anyhow::Result<History> {
    let state = registry.state()?;
    Ok(History {
        model: registry.model().to_string(),
        decisions: registry.decisions()?,
        repairs: state.repairs,
    })
}
