//! Decision: the width (and thread count) for a caller's budget, from a [`Calibration`] and what
//! is known per width (stored accuracy, download bytes, memory), with the reasons in words.

use serde::{Deserialize, Serialize};

use super::Calibration;
use crate::bits::Bits;
use crate::error::{ErrorKind, Result};

/// What the caller can afford. Every field is optional; an empty budget asks for the most
/// accurate width.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Budget {
    /// Latency of one forward pass, ms.
    pub latency_ms: Option<f64>,
    /// Bytes of the model file the width may need downloaded (its prefix of bit planes).
    pub max_bytes: Option<u64>,
    /// Bytes of memory the runtime may hold for the model at the width (see
    /// [`Model::memory_bytes`](crate::Model::memory_bytes)).
    pub max_memory_bytes: Option<u64>,
}

/// One width as the policy saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    pub width: Bits,
    /// Threads to run this width with: one where the calibration found more no faster.
    pub threads: usize,
    pub predicted_ms: f64,
    /// Test accuracy from the model's stored eval table, if it has one for this width.
    pub accuracy: Option<f64>,
    /// Bytes of the file this width needs (header, tensors and its bit planes), if known.
    pub bytes: Option<u64>,
    /// Bytes of memory the runtime holds for the model at this width, if known.
    pub memory_bytes: Option<u64>,
    pub fits: bool,
}

/// The policy's answer: the width, every alternative, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub width: Bits,
    pub threads: usize,
    pub isa: String,
    pub options: Vec<Choice>,
    pub reasons: Vec<String>,
}

/// Relative difference under which two predicted latencies count as equal when no width fits.
pub const TIE: f64 = 0.1;

/// Chooses a width: among the widths that fit every part of the budget, the most accurate
/// (stored accuracy; a wider width where none is stored), the faster on a tie. If none fits,
/// the fastest width (the narrowest of those within [`TIE`] of it), and the reasons say so.
/// `accuracy`, `bytes` and `memory` are per width, as known.
pub fn decide(
    cal: &Calibration,
    budget: &Budget,
    accuracy: &[(Bits, f64)],
    bytes: &[(Bits, u64)],
    memory: &[(Bits, u64)],
) -> Result<Decision> {
    if let Some(ms) = budget.latency_ms {
        if !(ms.is_finite() && ms > 0.0) {
            crate::bail!(ErrorKind::InvalidArgument, "latency budget must be a positive number of ms, got {ms}");
        }
    }
    if cal.gemm_ms.is_empty() {
        crate::bail!(ErrorKind::InvalidArgument, "the calibration holds no widths");
    }
    let mut options: Vec<Choice> = cal
        .gemm_ms
        .iter()
        .map(|&(w, _)| {
            let (threads, predicted_ms) = cal.threads_for(w);
            let acc = accuracy.iter().find(|x| x.0 == w).map(|x| x.1);
            let b = bytes.iter().find(|x| x.0 == w).map(|x| x.1);
            let mem = memory.iter().find(|x| x.0 == w).map(|x| x.1);
            let fits = budget.latency_ms.is_none_or(|ms| predicted_ms <= ms)
                && budget.max_bytes.is_none_or(|m| b.is_none_or(|b| b <= m))
                && budget.max_memory_bytes.is_none_or(|m| mem.is_none_or(|b| b <= m));
            Choice { width: w, threads, predicted_ms, accuracy: acc, bytes: b, memory_bytes: mem, fits }
        })
        .collect();
    options.sort_by(|a, b| b.width.cmp(&a.width));
    // Higher is better: stored accuracy first, then width, then speed.
    let better = |a: &Choice, b: &Choice| -> bool {
        match (a.accuracy, b.accuracy) {
            (Some(x), Some(y)) if x != y => x > y,
            _ if a.width != b.width && (a.accuracy.is_none() || b.accuracy.is_none()) => a.width > b.width,
            _ => a.predicted_ms < b.predicted_ms,
        }
    };
    let mut reasons = vec![format!(
        "calibrated on this device: {} kernels, {} thread{}, the model measured {:.2} ms at {} bits",
        cal.isa,
        cal.threads,
        if cal.threads == 1 { "" } else { "s" },
        cal.measured_ms,
        cal.measured_width
    )];
    let fitting: Vec<&Choice> = options.iter().filter(|o| o.fits).collect();
    let chosen = if let Some(best) = fitting.iter().copied().reduce(|a, b| if better(b, a) { b } else { a }) {
        let why_acc = match best.accuracy {
            Some(a) => format!("{:.2}% stored test accuracy", a * 100.0),
            None => "no stored accuracy; the widest fitting width".to_string(),
        };
        reasons.push(format!("{} bits: the most accurate width within the budget ({why_acc}, predicted {:.2} ms)", best.width, best.predicted_ms));
        best.width
    } else {
        let least = options.iter().map(|o| o.predicted_ms).fold(f64::INFINITY, f64::min);
        // Predictions within TIE of the fastest are not told apart by a calibration on a busy
        // device; of those, the narrowest needs the fewest bytes and the least memory.
        let fastest = options
            .iter()
            .filter(|o| o.predicted_ms <= least * (1.0 + TIE))
            .min_by_key(|o| o.width)
            .expect("options is not empty");
        reasons.push(format!(
            "no width fits the budget; {} bits is the fastest (predicted {:.2} ms; widths within {:.0}% of the fastest count as equally fast, and the narrowest is taken)",
            fastest.width,
            fastest.predicted_ms,
            TIE * 100.0
        ));
        fastest.width
    };
    if let Some(ms) = budget.latency_ms {
        let over: Vec<String> = options.iter().filter(|o| o.predicted_ms > ms).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} are predicted slower than the {ms} ms budget", over.join(", ")));
        }
    }
    if let Some(m) = budget.max_bytes {
        let over: Vec<String> = options.iter().filter(|o| o.bytes.is_some_and(|b| b > m)).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} need more than the {m}-byte data budget", over.join(", ")));
        }
    }
    if let Some(m) = budget.max_memory_bytes {
        let over: Vec<String> =
            options.iter().filter(|o| o.memory_bytes.is_some_and(|b| b > m)).map(|o| o.width.to_string()).collect();
        if !over.is_empty() {
            reasons.push(format!("widths {} need more than the {m}-byte memory cap", over.join(", ")));
        }
    }
    let pick = options.iter().find(|o| o.width == chosen).expect("the chosen width is an option");
    if let Some(&(_, one)) = cal.one_thread_ms.iter().find(|x| x.0 == chosen) {
        let many = cal.predict_ms(chosen).unwrap_or(f64::INFINITY);
        reasons.push(if pick.threads == 1 {
            format!(
                "1 thread: at {chosen} bits {} threads are predicted {many:.2} ms against {one:.2} ms on one, not more than {:.0}% faster, so the other cores stay free",
                cal.threads,
                TIE * 100.0
            )
        } else {
            format!("{} threads: predicted {many:.2} ms at {chosen} bits against {one:.2} ms on one thread", cal.threads)
        });
    }
    Ok(Decision { width: chosen, threads: pick.threads, isa: cal.isa.clone(), options, reasons })
}
