//! Many promoters at once against the S3 registry: 32 writers x 20 rounds.
//! In every round exactly one compare-and-swap of the champion wins, every
//! loser sees the precondition error (exit 4 in the binary), and the
//! decision log gets exactly one entry per round: none lost, none twice.

use std::sync::Barrier;

use chrono::Utc;
use salescast_core::registry::{Champion, DecisionKind, NewDecision, Registry, RegistryError};
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
                        // Everyone reads the same pointer, then everyone tries to move it.
                        let current = registry.champion().unwrap();
                        barrier.wait();
                        let pointer = Champion {
                            version: format!("{round:02}-{writer:02}"),
                            since: Utc::now(),
                            previous: current.as_ref().map(|(c, _)| c.version.clone()),
                            kind: DecisionKind::Promoted,
                        };
                        match registry.set_champion(&pointer, current.as_ref().map(|(_, v)| v)) {
                            Ok(()) => {
                                registry
                                    .append_decision(NewDecision {
                                        kind: DecisionKind::Promoted,
                                        actor: format!("writer {writer}"),
                                        reason: format!("round {round}"),
                                        run_date: None,
                                        champion_before: pointer.previous.clone(),
                                        champion_after: Some(pointer.version.clone()),
                                        challenger: Some(pointer.version.clone()),
                                        challenger_metrics: None,
                                        champion_metrics: None,
                                        baseline_metrics: None,
                                    })
                                    .unwrap();
                                won.push(round);
                            }
                            Err(RegistryError::Superseded { .. }) => {}
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
}
