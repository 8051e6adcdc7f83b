//! `--out` / `VOLLEY_OUT`: the outputs of the fleet tests this agent
//! coordinates when a test names none (comma-separated `--out` values,
//! checked as a fleet test's outputs are; `K6_*` option variables are not
//! read: the URL says everything).

use std::borrow::Cow;

use super::load::{Loader, Lookup};
use super::names::Setting;
use super::parse::Expected;

impl Loader<'_> {
    /// The default outputs; `None` when the setting was rejected.
    pub(super) fn outputs(&mut self) -> Option<Vec<String>> {
        let args = self.args;
        match self.lookup(Setting::OUT, args.out.as_ref(), outputs) {
            Lookup::Unset => Some(Vec::new()),
            Lookup::Invalid => None,
            Lookup::Value(values, _) => Some(values),
        }
    }
}

fn outputs(s: &str) -> Result<Vec<String>, Expected> {
    let none = |_: &str| None;
    s.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            crate::outputs::fleet::parse(v, &none, &[])
                .map(|_| v.to_owned())
                .map_err(Cow::Owned)
        })
        .collect()
}
