//! A submitted fleet test's outputs: checked (kind, size, the agent's
//! egress policy) before anything runs, opened just before the test is
//! handed to the origin.

use std::net::IpAddr;
use std::sync::Arc;

use crate::api::{ApiError, SubmitRequest};
use crate::fleet::merge::OutputGrouping;
use crate::fleet::origin::FleetOutputs;
use crate::outputs::OutputSpec;
use crate::plan::egress::EgressPolicy;

/// Outputs one test may have.
const MAX_OUTPUTS: usize = 4;
/// Bytes of one `--out` value at most.
const MAX_VALUE: usize = 2048;

/// What a test's outputs will be, checked.
pub struct Checked {
    by: OutputGrouping,
    specs: Vec<OutputSpec>,
    egress: Arc<EgressPolicy>,
}

/// Checks the request's outputs (or, when it names none, the agent's
/// defaults). A submitted value is read without this agent's `K6_*`
/// variables: they must not go to a backend the submitter chose.
pub fn check(
    req: &SubmitRequest,
    defaults: &[String],
    egress: &Arc<EgressPolicy>,
    me: &str,
) -> Result<Checked, ApiError> {
    let bad = |message: String| ApiError::BadRequest { message };
    let by = match &req.outputs_by {
        Some(s) => OutputGrouping::parse(s).map_err(|e| bad(format!("outputsBy: {e}")))?,
        None => OutputGrouping::Fleet,
    };
    let (values, field) = if req.outputs.is_empty() {
        (defaults, "the agent's --out")
    } else {
        (&req.outputs[..], "outputs")
    };
    if values.len() > MAX_OUTPUTS {
        return Err(bad(format!(
            "outputs: {} given, at most {MAX_OUTPUTS}",
            values.len()
        )));
    }
    let none = |_: &str| None;
    let mut specs = Vec::new();
    for (i, value) in values.iter().enumerate() {
        if value.len() > MAX_VALUE {
            return Err(bad(format!(
                "{field}[{i}]: {} bytes, at most {MAX_VALUE}",
                value.len()
            )));
        }
        let spec = crate::outputs::fleet::parse(value, &none, &[])
            .map_err(|e| bad(format!("{field}[{i}]: {e}")))?;
        if let Some(host) = crate::outputs::fleet::host(&spec) {
            let ip = host.parse::<IpAddr>().ok();
            egress
                .check(Some(&host), ip)
                .map_err(|denial| ApiError::Unprocessable {
                    message: format!("{field}[{i}]: {denial} (agent {me})"),
                })?;
        }
        specs.push(spec);
    }
    Ok(Checked {
        by,
        specs,
        egress: egress.clone(),
    })
}

impl Checked {
    /// Starts the outputs.
    pub fn open(self) -> Result<FleetOutputs, ApiError> {
        let outputs = crate::outputs::fleet::open(&self.specs, &self.egress)
            .map_err(|message| ApiError::Internal { message })?;
        Ok(FleetOutputs {
            by: self.by,
            outputs,
        })
    }
}
