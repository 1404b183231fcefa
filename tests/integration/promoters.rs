//! Many promoters at once against the S3 registry: 32 writers x 20 rounds,
//! each through the registry's promotion protocol (`Registry::state`, then
//! `Registry::commit`), as retrain and rollback call it. In every round
//! exactly one commit wins, every loser is superseded (exit 4 in the binary)
//! having logged nothing, and the decision log gets exactly one entry per
//! round: none lost, none twice.

use std::sync::Barrier;

use salescast_core::registry::{DecisionKind, NewDecision, Registry, RegistryError};
use salescast_core::storage::{self, S3Settings};

use crate::util::{handle, s3_bucket, s3_endpoint};

const PROMOTERS: usize = 32;
const ROUNDS: usize = 20;

#[test]
fn thirty_two_promoters_twenty_rounds_one_winner_each() {
    let settings = S3Settings {
        endpoint: Some(s3_endpoint()),
        ..Default::default()
    };
    let bucket = s3_bucket("promoters");
    let store = storage::open(&format!("s3://{bucket}/registry"), &settings, handle()).unwrap();
    let registry = Registry::new(store, "sales");
    let barrier = Barrier::new(PROMOTERS);
    let winners: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..PROMOTERS)
            .map(|writer| {
                let (registry, barrier) = (&registry, &barrier);
                scope.spawn(move || {
                    let mut won = Vec::new();
                    for round in 0..ROUNDS {
                        // Everyone reads the same state, then everyone commits against it.
                        let state = registry.state().unwrap();
                        assert!(state.repairs.is_empty(), "{:?}", state.repairs);
                        barrier.wait();
                        let decision = NewDecision {
                            kind: DecisionKind::Promoted,
                            actor: format!("writer {writer}"),
                            reason: format!("round {round}"),
                            run_date: None,
                            champion_before: None,
                            champion_after: Some(format!("{round:02}-{writer:02}")),
                            challenger: Some(format!("{round:02}-{writer:02}")),
                            challenger_metrics: None,
                            champion_metrics: None,
                            baseline_metrics: None,
                            recovered: false,
                            noise: None,
                            search: None,
                        };
                        match registry.commit(&state, decision) {
                            Ok(entry) => {
                                assert_eq!(entry.sequence, round as u64 + 1);
                                won.push(round);
                            }
                            Err(RegistryError::Superseded { detail, .. }) => {
                                assert!(detail.contains("logged nothing"), "{detail}");
                            }
                            Err(e) => panic!("writer {writer}, round {round}: unexpected {e}"),
                        }
                        // Nobody starts the next round before this one is settled.
                        barrier.wait();
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for round in 0..ROUNDS {
        let count = winners.iter().filter(|w| w.contains(&round)).count();
        assert_eq!(count, 1, "round {round} had {count} winners");
    }
    let log = registry.decisions().unwrap();
    assert_eq!(log.len(), ROUNDS, "one decision per round, none lost");
    let sequences: Vec<u64> = log.iter().map(|d| d.sequence).collect();
    assert_eq!(
        sequences,
        (1..=ROUNDS as u64).collect::<Vec<_>>(),
        "no hole, no overwrite"
    );
    // The log's chain of champions is unbroken: each entry starts where the last ended.
    for pair in log.windows(2) {
        assert_eq!(pair[1].what.champion_before, pair[0].what.champion_after);
    }
    let (champion, _) = registry.champion().unwrap().unwrap();
    assert_eq!(Some(champion.version), log.last().unwrap().what.champion_after);
    assert_eq!(
        champion.decision,
        Some(ROUNDS as u64),
        "the pointer names the decision that moved it"
    );
}
