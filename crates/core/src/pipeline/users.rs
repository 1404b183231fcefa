//! `salescast users add|passwd|set-role|disable|list`: the accounts of the
//! dashboard and API, kept in the registry's store (see `accounts`). The
//! first admin is added this way by whoever can write the registry; there is
//! no default account or password.

use serde::Serialize;

use crate::accounts::{Accounts, AccountsError, Change, Role, UserView};
use crate::registry::Registry;

/// What a `users` command did.
#[derive(Debug, Clone, Serialize)]
pub struct UsersReport {
    /// `added`, `password_changed`, `role_changed`, `disabled`, `listed`.
    pub action: &'static str,
    pub users: Vec<UserView>,
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
}

pub fn users(registry: &Registry, command: UsersCommand, actor: &str) -> Result<UsersReport, AccountsError> {
    let accounts = Accounts::new(registry.store().clone());
    let one = |action, user: &crate::accounts::User| UsersReport {
        action,
        users: vec![user.into()],
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
        },
    })
}
