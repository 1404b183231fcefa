//! The pages' extractors: the admin role, checked before a form or path is
//! read (a non-admin learns nothing of a form's fields), and form bodies and
//! path segments whose rejections are HTML error pages with their status
//! (axum answers them in plain text).

use axum::extract::{Form, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use salescast_core::accounts::Role;
use serde::de::DeserializeOwned;

use super::PageError;
use crate::auth::Caller;
use crate::error::ApiError;

/// The caller, who must be an admin (403 page otherwise).
pub struct Admin(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PageError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("log in first"))?;
        caller.require(Role::Admin)?;
        Ok(Self(caller))
    }
}

/// A form body (`application/x-www-form-urlencoded`).
pub struct PageForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PageError> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::rejected(e.status(), e.body_text()).into()),
        }
    }
}

/// Path segments (percent-decoded; not UTF-8 is a 400 page).
pub struct PagePath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PagePath<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::rejected(e.status(), e.body_text()).into()),
        }
    }
}
