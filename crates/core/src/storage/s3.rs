//! The S3 backend of [`AsyncStore`], with aws-sdk-s3: the standard credential
//! chain and region lookup, any S3-compatible endpoint (path-style),
//! conditional writes, multipart uploads for large objects, paginated listing,
//! retries with backoff and jitter, and optional server-side encryption. It
//! owns no runtime: every call, opening included, runs on the caller's.
//!
//! Conditional writes map onto the trait's semantics here and nowhere else:
//! create-only is `If-None-Match: *` (412 means it exists), update-if-version
//! is `If-Match: <etag>` (412, or 404 when the object is gone, means the race
//! was lost), and 409 ConditionalRequestConflict is retried.
//!
//! Retries can land twice: when a write's response is lost (a reset, a
//! truncated answer), the SDK sends it again, and a conditional one then
//! fails against the object its own first attempt wrote. So a write that
//! took more than one attempt and failed reads the object back: if it holds
//! exactly this write's bytes, the write is done (see [`S3Store::put`]). A
//! read whose body breaks off mid-stream (after the SDK's retries, which end
//! at the headers) is sent again, up to [`GET_ATTEMPTS`] times.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use serde::{Deserialize, Serialize};

#[path = "s3_intercept.rs"]
mod intercept;
use intercept::{CountAttempts, CountRequests};

use super::{AsyncStore, Object, ObjectMeta, PutMode, RequestCounts, StoreError, check_key};

/// Objects above this size go up in parts.
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Attempts at a write that S3 answered with 409 ConditionalRequestConflict.
const CONFLICT_ATTEMPTS: u32 = 5;
/// Attempts at a get whose body broke off after the headers.
const GET_ATTEMPTS: u32 = 4;

/// S3 settings from the configuration (`[s3]`) and flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// An S3-compatible endpoint (also `--s3-endpoint`, or `AWS_ENDPOINT_URL`);
    /// requests then use path-style addressing.
    pub endpoint: Option<String>,
    /// The region, when the usual places (`AWS_REGION`, profile) do not say.
    pub region: Option<String>,
    /// Server-side encryption: `"AES256"` (SSE-S3) or `"aws:kms"` (SSE-KMS).
    pub sse: Option<String>,
    /// The KMS key for `sse = "aws:kms"` (else the bucket's default key).
    pub kms_key_id: Option<String>,
}

impl S3Settings {
    pub fn check(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.endpoint {
            Self::check_endpoint(endpoint).map_err(|problem| format!("s3.endpoint: {problem}"))?;
        }
        match self.sse.as_deref() {
            None | Some("AES256") | Some("aws:kms") => {}
            Some(other) => return Err(format!("s3.sse: {other:?} is not \"AES256\" or \"aws:kms\"")),
        }
        if self.kms_key_id.is_some() && self.sse.as_deref() != Some("aws:kms") {
            return Err("s3.kms_key_id needs s3.sse = \"aws:kms\"".into());
        }
        Ok(())
    }

    /// An endpoint is an http:// or https:// URL with a host (the SDK would
    /// otherwise retry a request it can never send, and blame the store).
    pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
        let rest = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"));
        let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
        match host {
            Some(host)
                if !host.is_empty() && !host.starts_with(':') && !host.contains(char::is_whitespace) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "{endpoint:?} is not an http:// or https:// URL with a host (such as http://127.0.0.1:9000)"
            )),
        }
    }
}

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    settings: S3Settings,
    requests: CountRequests,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Store(s3://{}/{})", self.bucket, self.prefix)
    }
}

/// The SDK's HTTPS client: hyper on rustls with the ring provider and the
/// system's root certificates.
fn https_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Splits `s3://bucket/some/prefix` into bucket and prefix (no trailing '/').
pub fn parse_uri(uri: &str) -> Result<(String, String), StoreError> {
    let unsupported = |reason: &str| StoreError::UnsupportedUri {
        uri: uri.to_string(),
        reason: reason.to_string(),
    };
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| unsupported("expected s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(unsupported("the bucket name is empty"));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

impl S3Store {
    /// Loads the AWS configuration (credential chain, region) and builds the
    /// client, on the caller's runtime.
    pub async fn open(uri: &str, settings: &S3Settings) -> Result<Self, StoreError> {
        let (bucket, prefix) = parse_uri(uri)?;
        let backend = |message: String| StoreError::Backend {
            uri: uri.to_string(),
            message,
        };
        settings.check().map_err(backend)?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6));
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        let requests = CountRequests::default();
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk).interceptor(requests.clone());
        let endpoint = settings
            .endpoint
            .clone()
            .or_else(|| sdk.endpoint_url().map(str::to_string));
        if let Some(endpoint) = endpoint {
            // S3-compatible servers: path-style, and checksums only when the
            // operation requires them.
            builder = builder
                .endpoint_url(endpoint)
                .force_path_style(true)
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
            if sdk.region().is_none() {
                builder = builder.region(Region::new("us-east-1"));
            }
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix,
            settings: settings.clone(),
            requests,
        })
    }

    fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn error<E: std::error::Error + 'static>(
        &self,
        key: &str,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError {
        let uri = self.uri_of(key);
        match status_of(&err) {
            Some(404) => StoreError::NotFound { uri },
            _ => StoreError::Backend {
                uri,
                message: describe(&err),
            },
        }
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.settings.sse.as_deref().map(ServerSideEncryption::from)
    }

    async fn put_once(
        &self,
        key: &str,
        bytes: &[u8],
        mode: &PutMode,
        attempts: &CountAttempts,
    ) -> Result<String, StoreError> {
        if bytes.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, bytes, mode, attempts).await;
        }
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(ByteStream::from(bytes.to_vec()))
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.settings.kms_key_id.clone());
        let (if_none_match, if_match) = conditions(mode);
        match request
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await
        {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(err) => Err(self.write_error(key, mode, err)),
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        bytes: &[u8],
        mode: &PutMode,
        attempts: &CountAttempts,
    ) -> Result<String, StoreError> {
        let object_key = self.object_key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&object_key)
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.settings.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let result = self
            .upload_parts(key, &object_key, &upload_id, bytes, mode, attempts)
            .await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&object_key)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        object_key: &str,
        upload_id: &str,
        bytes: &[u8],
        mode: &PutMode,
        attempts: &CountAttempts,
    ) -> Result<String, StoreError> {
        let mut parts = Vec::new();
        for (i, chunk) in bytes.chunks(PART_SIZE).enumerate() {
            let number = i as i32 + 1;
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(object_key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.error(key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .build(),
            );
        }
        let request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(object_key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
        let (if_none_match, if_match) = conditions(mode);
        match request
            .set_if_none_match(if_none_match)
            .set_if_match(if_match)
            .customize()
            .interceptor(attempts.clone())
            .send()
            .await
        {
            Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
            Err(err) => Err(self.write_error(key, mode, err)),
        }
    }

    /// The trait's meaning of a failed conditional write.
    fn write_error<E: std::error::Error + 'static>(
        &self,
        key: &str,
        mode: &PutMode,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError {
        let uri = self.uri_of(key);
        match (status_of(&err), mode) {
            (Some(412), PutMode::Create) => StoreError::AlreadyExists { uri },
            (Some(412), PutMode::Update(_)) => StoreError::Precondition {
                uri,
                detail: "the object changed (ETag no longer matches)".into(),
            },
            (Some(404), PutMode::Update(_)) => StoreError::Precondition {
                uri,
                detail: "the object is gone".into(),
            },
            (Some(409), _) => StoreError::Backend {
                uri,
                message: CONFLICT.into(),
            },
            _ => self.error(key, err),
        }
    }
}

const CONFLICT: &str = "409 ConditionalRequestConflict";

/// The `If-None-Match` and `If-Match` headers of a put mode, for a single
/// put and for the completion of a multipart upload alike.
fn conditions(mode: &PutMode) -> (Option<String>, Option<String>) {
    match mode {
        PutMode::Overwrite => (None, None),
        PutMode::Create => (Some("*".into()), None),
        PutMode::Update(etag) => (None, Some(etag.clone())),
    }
}

fn status_of<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The whole error chain in one line: the SDK's top-level message alone says little.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

/// The wait before attempt `attempt + 1` of a request this store retries
/// itself (a broken-off body, a 409 conflict): linear, with jitter so that
/// racing writers do not retry in step.
async fn backoff(attempt: u32) {
    let jitter = rand::random_range(0..50u64);
    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt) + jitter)).await;
}

impl S3Store {
    fn written(&self, key: &str, bytes: &[u8], version: String) -> ObjectMeta {
        ObjectMeta {
            key: key.to_string(),
            size: bytes.len() as u64,
            version,
        }
    }
}

#[async_trait::async_trait]
impl AsyncStore for S3Store {
    fn uri_of(&self, key: &str) -> String {
        let path = self.object_key(key);
        format!("s3://{}/{}", self.bucket, path.trim_end_matches('/'))
    }

    async fn get(&self, key: &str) -> Result<Object, StoreError> {
        check_key(key)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(self.object_key(key))
                .send()
                .await
                .map_err(|e| self.error(key, e))?;
            let version = out.e_tag().unwrap_or_default().to_string();
            match out.body.collect().await {
                Ok(bytes) => {
                    return Ok(Object {
                        bytes: bytes.into_bytes().to_vec(),
                        version,
                    });
                }
                // The body broke off after the headers (the SDK's retries end
                // there): a get is safe to send again.
                Err(e) if attempt < GET_ATTEMPTS => {
                    tracing::debug!(
                        "{}: the body broke off ({}); reading again",
                        self.uri_of(key),
                        describe(&e)
                    );
                    backoff(attempt).await;
                }
                Err(e) => {
                    return Err(StoreError::Backend {
                        uri: self.uri_of(key),
                        message: format!("the body broke off after {attempt} attempts: {}", describe(&e)),
                    });
                }
            }
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta, StoreError> {
        check_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size: out.content_length().unwrap_or_default().max(0) as u64,
            version: out.e_tag().unwrap_or_default().to_string(),
        })
    }

    /// A write, retried by the SDK on transient errors and here on 409
    /// conflicts. If it took more than one attempt and failed (a conditional
    /// write's 412 above all), an earlier attempt may have landed with its
    /// response lost: the object is read back, and if it holds exactly these
    /// bytes the write is done, at the version read.
    async fn put(&self, key: &str, bytes: &[u8], mode: PutMode) -> Result<ObjectMeta, StoreError> {
        check_key(key)?;
        let attempts = CountAttempts::default();
        let mut attempt = 0;
        let failed = loop {
            attempt += 1;
            match self.put_once(key, bytes, &mode, &attempts).await {
                Ok(version) => return Ok(self.written(key, bytes, version)),
                Err(StoreError::Backend { message, .. })
                    if message == CONFLICT && attempt < CONFLICT_ATTEMPTS =>
                {
                    backoff(attempt).await;
                }
                Err(e) => break e,
            }
        };
        if !attempts.retried() {
            return Err(failed);
        }
        match self.get(key).await {
            Ok(there) if there.bytes == bytes => {
                tracing::debug!(
                    "{}: an earlier attempt of this write landed (its response was lost): done",
                    self.uri_of(key)
                );
                Ok(self.written(key, bytes, there.version))
            }
            _ => Err(failed),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                out.push(ObjectMeta {
                    key: key[strip.min(key.len())..].to_string(),
                    size: object.size().unwrap_or_default().max(0) as u64,
                    version: object.e_tag().unwrap_or_default().to_string(),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn requests(&self) -> RequestCounts {
        self.requests
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_uri("s3://b/lake/x/").unwrap(),
            ("b".into(), "lake/x".into())
        );
        assert_eq!(parse_uri("s3://b").unwrap(), ("b".into(), String::new()));
        assert!(parse_uri("s3:///x").is_err());
    }

    #[test]
    fn sse_settings_are_checked() {
        let bad = S3Settings {
            sse: Some("rot13".into()),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let orphan_key = S3Settings {
            kms_key_id: Some("k".into()),
            ..Default::default()
        };
        assert!(orphan_key.check().is_err());
        let kms = S3Settings {
            sse: Some("aws:kms".into()),
            kms_key_id: Some("k".into()),
            ..Default::default()
        };
        assert!(kms.check().is_ok());
    }
}
