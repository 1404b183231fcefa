//! The stored model artifact: the fitted model with everything needed to use
//! it on new data (mapping, feature settings, category encoder), serialized
//! deterministically with bincode so equal models give equal bytes and so
//! equal SHA-256 content addresses.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Encoder, FittedModel, ModelError};
use crate::features::FeatureSettings;
use crate::mapping::DataMapping;

/// Bumped when the artifact's layout changes; older artifacts are refused.
pub const ARTIFACT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Artifact {
    pub format: u32,
    pub mapping: DataMapping,
    pub features: FeatureSettings,
    pub encoder: Encoder,
    pub model: FittedModel,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("cannot decode the artifact: {0}")]
    Decode(String),
    #[error("artifact format {found} is not supported (this build reads format {ARTIFACT_FORMAT_VERSION})")]
    Format { found: u32 },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Polars(#[from] PolarsError),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

impl Artifact {
    pub fn to_bytes(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode_config()).expect("an artifact always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let (artifact, _): (Artifact, usize) = bincode::serde::decode_from_slice(bytes, bincode_config())
            .map_err(|e| ArtifactError::Decode(e.to_string()))?;
        if artifact.format != ARTIFACT_FORMAT_VERSION {
            return Err(ArtifactError::Format {
                found: artifact.format,
            });
        }
        Ok(artifact)
    }

    /// Forecasts for every row of a feature frame built with this artifact's
    /// mapping and feature settings; closed days (open flag 0) are 0.
    pub fn predict(&self, features: &DataFrame) -> Result<Vec<f64>, ArtifactError> {
        let design = self.encoder.design(features)?;
        let mut predicted = self.model.predict(&design)?;
        if let Some(open) = &self.mapping.open_flag {
            let flags = features.column(open)?.f64()?.clone();
            for (p, flag) in predicted.iter_mut().zip(flags.iter()) {
                if flag == Some(0.0) {
                    *p = 0.0;
                }
            }
        }
        Ok(predicted)
    }
}
