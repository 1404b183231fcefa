//! Accounts on a local store in a temporary folder: hashing, verification,
//! conditional changes (no lost update), session epochs, the audit log.

use super::*;

fn accounts() -> (tempfile::TempDir, Accounts) {
    let (dir, store) = crate::storage::temp_store();
    (dir, Accounts::new(store))
}

const PASSWORD: &str = "correct horse battery";

#[test]
fn a_user_is_stored_hashed_and_verifies_only_with_their_password() {
    let (dir, accounts) = accounts();
    let user = accounts
        .add("maria", Role::Store, &["102".into()], PASSWORD, "admin")
        .unwrap();
    assert!(
        user.password.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        user.password
    );
    let stored = std::fs::read_to_string(dir.path().join("accounts/users/maria.json")).unwrap();
    assert!(!stored.contains(PASSWORD), "the password is not stored in clear");
    assert_eq!(
        accounts.login("maria", PASSWORD, "test").unwrap().map(|u| u.name),
        Some("maria".into())
    );
    assert!(
        accounts
            .login("maria", "correct horse batterY", "test")
            .unwrap()
            .is_none()
    );
    assert!(accounts.login("nobody", PASSWORD, "test").unwrap().is_none());
    assert!(
        accounts
            .login("../etc/passwd", PASSWORD, "test")
            .unwrap()
            .is_none()
    );
    // Two hashes of one password differ (a salt each).
    assert_ne!(hash_password(PASSWORD).unwrap(), user.password);
}

#[test]
fn bad_names_roles_stores_and_passwords_are_refused() {
    let (_dir, accounts) = accounts();
    for name in ["", "Maria", "a/b", "../x", ".hidden", &"x".repeat(65)] {
        let err = accounts.add(name, Role::Admin, &[], PASSWORD, "t").unwrap_err();
        assert!(
            matches!(
                err,
                AccountsError::Invalid {
                    what: "user name",
                    ..
                }
            ),
            "{name:?}: {err}"
        );
    }
    assert!(matches!(
        accounts.add("ana", Role::Admin, &[], "short", "t").unwrap_err(),
        AccountsError::Invalid { what: "password", .. }
    ));
    assert!(matches!(
        accounts.add("ana", Role::Store, &[], PASSWORD, "t").unwrap_err(),
        AccountsError::Invalid { what: "stores", .. }
    ));
    assert!(matches!(
        accounts
            .add("ana", Role::Manager, &["1".into()], PASSWORD, "t")
            .unwrap_err(),
        AccountsError::Invalid { what: "stores", .. }
    ));
    assert!("boss".parse::<Role>().is_err());
    accounts.add("ana", Role::Admin, &[], PASSWORD, "t").unwrap();
    assert!(matches!(
        accounts.add("ana", Role::Admin, &[], PASSWORD, "t").unwrap_err(),
        AccountsError::Exists { .. }
    ));
}

#[test]
fn changes_bump_the_session_epoch_and_two_editors_cannot_both_win() {
    let (_dir, accounts) = accounts();
    accounts
        .add("joe", Role::Manager, &[], PASSWORD, "admin")
        .unwrap();
    let (first, version) = accounts.get("joe").unwrap();
    let (second, same_version) = accounts.get("joe").unwrap();
    assert_eq!(version, same_version);
    let changed = accounts
        .change_at(first, version, Change::Disable, "admin-1")
        .unwrap();
    assert!(changed.disabled && changed.session_epoch == 2);
    let lost = accounts
        .change_at(
            second,
            same_version,
            Change::Password("another long password".into()),
            "admin-2",
        )
        .unwrap_err();
    assert!(matches!(lost, AccountsError::Concurrent { .. }), "{lost}");
    assert!(
        accounts.login("joe", PASSWORD, "test").unwrap().is_none(),
        "disabled"
    );
    let enabled = accounts.change("joe", Change::Enable, "admin-1").unwrap();
    assert_eq!(enabled.session_epoch, 3);
    let moved = accounts
        .change(
            "joe",
            Change::Role {
                role: Role::Store,
                stores: vec!["7".into()],
            },
            "admin-1",
        )
        .unwrap();
    assert_eq!(
        (moved.role, moved.stores.clone(), moved.session_epoch),
        (Role::Store, vec!["7".to_string()], 4)
    );
    assert!(matches!(
        accounts.change("nobody", Change::Disable, "a").unwrap_err(),
        AccountsError::UnknownUser { .. }
    ));

    let listed: Vec<String> = accounts.list().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(listed, ["joe"]);
    let events: Vec<(String, String)> = accounts
        .audit()
        .entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.event))
        .collect();
    assert_eq!(
        events,
        [
            ("admin".to_string(), "user_added".to_string()),
            ("admin-1".into(), "user_disabled".into()),
            ("joe".into(), "login_failed".into()),
            ("admin-1".into(), "user_enabled".into()),
            ("admin-1".into(), "role_changed".into()),
        ],
        "the lost change is not in the log"
    );
}

#[test]
fn a_new_password_lifts_a_lockout_and_unknown_names_are_not_audited_as_typed() {
    let (_dir, accounts) = accounts();
    accounts
        .add("maria", Role::Store, &["102".into()], PASSWORD, "admin")
        .unwrap();
    let lock_out = || {
        for _ in 0..login::LOCKOUT_FAILURES {
            assert!(
                accounts
                    .login("maria", "wrong password!", "test")
                    .unwrap()
                    .is_none()
            );
        }
    };
    lock_out();
    let (locked, _) = accounts.get("maria").unwrap();
    assert!(locked.locked_until.is_some(), "locked after the failures");
    assert!(
        accounts.login("maria", PASSWORD, "test").unwrap().is_none(),
        "locked"
    );
    let fresh = "a brand new passphrase";
    accounts
        .change("maria", Change::Password(fresh.into()), "admin")
        .unwrap();
    assert_eq!(
        accounts.login("maria", fresh, "test").unwrap().map(|u| u.name),
        Some("maria".into()),
        "the admin's new password lets her in at once"
    );

    // Locked again, then disabled and enabled: enabling lifts the lock too.
    lock_out();
    assert!(
        accounts.login("maria", fresh, "test").unwrap().is_none(),
        "locked"
    );
    accounts.change("maria", Change::Disable, "admin").unwrap();
    accounts.change("maria", Change::Enable, "admin").unwrap();
    assert!(
        accounts.login("maria", fresh, "test").unwrap().is_some(),
        "enabled, unlocked"
    );

    // A password typed into the name field is not kept in the audit log.
    let typed = "Sup3rSecret-Passw0rd!";
    assert!(accounts.login(typed, "x", "test").unwrap().is_none());
    let entries = accounts.audit().entries().unwrap();
    let last = entries.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.event.as_str()),
        (login::UNKNOWN_USER, "login_failed")
    );
    assert!(entries.iter().all(|e| !format!("{e:?}").contains(typed)));
}
