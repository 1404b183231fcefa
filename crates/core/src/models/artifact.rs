//! The stored model artifact: the fitted model with everything needed to use
//! it on new data (mapping, feature settings, category encoder), serialized
//! deterministically with bincode so equal models give equal bytes and so
//! equal SHA-256 content addresses.
//!
//! The mapping's calendar tables follow the bincode body as a trailer (their
//! JSON text, bincode-encoded), written only when there are calendars: an
//! artifact without them has the bytes it had before calendars existed.

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
        let mut bytes =
            bincode::serde::encode_to_vec(self, bincode_config()).expect("an artifact always serializes");
        if !self.mapping.calendars.is_empty() {
            let text = serde_json::to_string(&self.mapping.calendars).expect("calendars always serialize");
            bytes.extend(
                bincode::serde::encode_to_vec(text, bincode_config()).expect("text always serializes"),
            );
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let decode = |e: bincode::error::DecodeError| ArtifactError::Decode(e.to_string());
        let (mut artifact, used): (Artifact, usize) =
            bincode::serde::decode_from_slice(bytes, bincode_config()).map_err(decode)?;
        if artifact.format != ARTIFACT_FORMAT_VERSION {
            return Err(ArtifactError::Format {
                found: artifact.format,
            });
        }
        if let Some(trailer) = bytes.get(used..).filter(|rest| !rest.is_empty()) {
            let (text, read): (String, usize) =
                bincode::serde::decode_from_slice(trailer, bincode_config()).map_err(decode)?;
            if read != trailer.len() {
                return Err(ArtifactError::Decode(format!(
                    "{} bytes after the calendar tables",
                    trailer.len() - read
                )));
            }
            artifact.mapping.calendars = serde_json::from_str(&text)
                .map_err(|e| ArtifactError::Decode(format!("the calendar tables: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureLayout;
    use crate::mapping::CalendarTable;
    use crate::models::SeasonalNaiveModel;

    fn artifact(mapping: DataMapping) -> Artifact {
        let features = FeatureSettings::default();
        Artifact {
            format: ARTIFACT_FORMAT_VERSION,
            encoder: Encoder {
                layout: FeatureLayout::new(&mapping, &features),
                vocabularies: Default::default(),
            },
            mapping,
            features,
            model: FittedModel::SeasonalNaive(SeasonalNaiveModel { sources: vec![] }),
        }
    }

    #[test]
    fn calendars_ride_after_the_body_and_only_when_there_are_some() {
        let plain = artifact(DataMapping::default());
        let bytes = plain.to_bytes();
        assert_eq!(
            bytes,
            bincode::serde::encode_to_vec(&plain, bincode_config()).unwrap(),
            "no calendars: the bytes of an artifact from before calendars"
        );
        assert!(Artifact::from_bytes(&bytes).unwrap().mapping.calendars.is_empty());

        let calendar: CalendarTable = toml::from_str(
            "name = \"regional\"\ndate_column = \"date\"\nby = \"store_type\"\n\
             where = { locale = [\"Regional\"] }\nflag = \"regional_holiday\"",
        )
        .unwrap();
        let with = artifact(DataMapping {
            calendars: vec![calendar.clone()],
            ..DataMapping::default()
        });
        let bytes = with.to_bytes();
        assert!(bytes.len() > plain.to_bytes().len());
        let back = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(back.mapping.calendars, [calendar]);
        assert_eq!(back.encoder.layout, with.encoder.layout);
        assert!(
            back.encoder
                .layout
                .numeric
                .contains(&"regional_holiday".to_string()),
            "{:?}",
            back.encoder.layout
        );
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(
            Artifact::from_bytes(&extra).is_err(),
            "trailing bytes are refused"
        );
    }
}
