//! Focused tests of single steps on both backends, through the harness of `harness.rs`: each
//! test claims one step of a simulated run, runs the step's function directly (and checks what
//! it returns) or through the pipeline, and records the completion as the scheduler would.

// the futures of a whole step, awaited in one test, nest deeper than the default allows
#![recursion_limit = "256"]

mod aggregate;
mod day1;
mod era5;
mod harness;
