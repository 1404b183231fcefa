//! `salescast users add|passwd|set-role|disable|list|token-add|tokens|token-revoke`:
//! the accounts of the dashboard and API and the API tokens of machine
//! clients, kept in the registry's store (see `accounts`). The first admin is
//! added this way by whoever can write the registry; there is no default
//! account or password.

use serde::Serialize;

use crate::accounts::{Accounts, AccountsError, Change, Role, TokenView, UserView};
use crate::registry::Registry;

/// What a `users` command did.
#[derive(Debug, Clone, Serialize)]
pub struct UsersReport {
    /// `added`, `password_changed`, `role_changed`, `disabled`, `listed`,
    /// `token_added`, `tokens_listed`, `token_revoked`.
    pub action: &'static str,
    pub users: Vec<UserView>,
    /// The tokens concerned (never a secret or a hash).
    pub tokens: Vec<TokenView>,
    /// The new token's text, after `token_added` only: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One `users` command.
#[derive(Debug, Clone)]
pub enum UsersCommand {
    Add {
        name: String,
        role: Role,
        stores: Vec<String>,
        password: String,
    },
    Passwd {
        name: String,
        password: String,
    },
    SetRole {
        name: String,
        role: Role,
        stores: Vec<String>,
    },
    Disable {
        name: String,
    },
    List,
    /// A new API token acting as `user`.
    TokenAdd {
        user: String,
        label: String,
    },
    Tokens,
    TokenRevoke {
        id: String,
    },
}

pub fn users(registry: &Registry, command: UsersCommand, actor: &str) -> Result<UsersReport, AccountsError> {
    let accounts = Accounts::new(registry.store().clone());
    let one = |action, user: &crate::accounts::User| UsersReport {
        action,
        users: vec![user.into()],
        tokens: Vec::new(),
        token: None,
    };
    let of_tokens = |action, tokens: Vec<TokenView>, token| UsersReport {
        action,
        users: Vec::new(),
        tokens,
        token,
    };
    Ok(match command {
        UsersCommand::Add {
            name,
            role,
            stores,
            password,
        } => one("added", &accounts.add(&name, role, &stores, &password, actor)?),
        UsersCommand::Passwd { name, password } => one(
            "password_changed",
            &accounts.change(&name, Change::Password(password), actor)?,
        ),
        UsersCommand::SetRole { name, role, stores } => one(
            "role_changed",
            &accounts.change(&name, Change::Role { role, stores }, actor)?,
        ),
        UsersCommand::Disable { name } => one("disabled", &accounts.change(&name, Change::Disable, actor)?),
        UsersCommand::List => UsersReport {
            action: "listed",
            users: accounts.list()?.iter().map(UserView::from).collect(),
            tokens: Vec::new(),
            token: None,
        },
        UsersCommand::TokenAdd { user, label } => {
            let (token, text) = accounts.create_token(&user, &label, actor, "cli")?;
            of_tokens("token_added", vec![(&token).into()], Some(text))
        }
        UsersCommand::Tokens => of_tokens(
            "tokens_listed",
            accounts.tokens()?.iter().map(TokenView::from).collect(),
            None,
        ),
        UsersCommand::TokenRevoke { id } => of_tokens(
            "token_revoked",
            vec![(&accounts.revoke_token(&id, actor, "cli")?).into()],
            None,
        ),
    })
}
