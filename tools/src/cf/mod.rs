//! Counterfactual detection (SemEval-2020 Task 5, docs/TEXT.md): the task's data and dev split,
//! its official metrics, fine-tuning a text model for both subtasks, and evaluating a file.

pub mod data;
pub mod bert;
pub mod eval;
pub mod metrics;
pub mod train;
