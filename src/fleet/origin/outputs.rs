//! A fleet test's outputs (`--out` of `volley run --agent`, a LoadTest's
//! `outputs`, an agent's default): the origin writes the fleet's merged
//! intervals once, tagged with the test id, as each interval is sealed;
//! at the end the outputs get their time limit off the runtime's threads,
//! and what they could not deliver goes into the summary's notes.

use std::sync::{Arc, Mutex};

use super::{Origin, Test, lock};
use crate::fleet::merge::OutputGrouping;
use crate::outputs::IntervalOutput;

/// The outputs a test was submitted with.
#[derive(Default)]
pub struct FleetOutputs {
    pub by: OutputGrouping,
    pub outputs: Vec<Box<dyn IntervalOutput>>,
}

impl std::fmt::Debug for FleetOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetOutputs")
            .field("by", &self.by)
            .field("outputs", &self.outputs.len())
            .finish()
    }
}

/// Hands the intervals sealed since the last call to the outputs (never
/// waits: each output queues or drops and counts).
pub(super) fn write_sealed(t: &mut Test) {
    if t.outputs.is_empty() {
        return;
    }
    let sealed = t.results.take_sealed();
    let id = t.meta.id.clone();
    for interval in &sealed {
        let mut tags: Vec<(&str, &str)> = vec![("testid", id.as_str())];
        tags.extend(interval.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for out in &mut t.outputs {
            out.write(&interval.snapshot, &tags);
        }
    }
}

impl Origin {
    /// Seals every open interval, writes them, and closes the outputs;
    /// their notes wait in the test for its summary.
    pub(super) async fn finish_outputs(&self, test: &Arc<Mutex<Test>>) {
        let outputs = {
            let mut t = lock(test);
            if t.outputs.is_empty() {
                return;
            }
            t.results.finish();
            write_sealed(&mut t);
            std::mem::take(&mut t.outputs)
        };
        let notes = tokio::task::spawn_blocking(move || {
            outputs
                .into_iter()
                .flat_map(|out| out.finish())
                .collect::<Vec<String>>()
        })
        .await
        .unwrap_or_else(|e| vec![format!("the outputs failed while closing: {e}")]);
        lock(test).output_notes = notes;
    }
}
