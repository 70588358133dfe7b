//! The fork/join that splits one GEMM (or one activation pack) over threads: the calling thread
//! and up to `threads - 1` helpers claim parts from one atomic counter.
//!
//! Why not rayon's `par_iter`: from outside the pool, `par_iter` parks the caller and wakes pool
//! threads through `Atomics.wait`/`notify`, about 0.2 ms per wake in a browser, twice per GEMM
//! (the pool's threads, then the caller). A pass of the shipped models has 4-20 GEMMs of
//! 0.01-0.5 ms each, so two threads ran slower than one (BENCHMARKS.md). Here the caller works
//! too and never parks, and helpers are rayon tasks woken once per pass ([`PassGuard`]) that spin
//! on the counter between parts while the pass runs: each GEMM of the pass finds them awake. A
//! helper that is not awake yet costs nothing but its share: the caller claims every part it
//! does not.

use std::cell::UnsafeCell;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// How long a helper spins for the next part after its last one while a pass is running, ms: a
/// pass's longest stretch without a split (pooling, the elementwise layers, a first conv that
/// stays on one thread) is well under this on the shipped models.
const SPIN_MS: f64 = 1.0;

/// Spins a helper waits for the next part when no pass is running (a GEMM called on its own, as
/// the kernel benchmark and calibration do): tens of microseconds, enough for back-to-back calls.
/// A helper must not outlive the pass for long: on a 2-core machine a spinning helper takes the
/// core that the page and the worker need to hand the result over (page-side time per run rose
/// 0.1-0.5 ms with a 1 ms spin after every pass).
const GRACE_SPINS: u32 = 1 << 13;

/// Passes running ([`PassGuard`]): helpers keep spinning while there is one.
static PASSES: AtomicUsize = AtomicUsize::new(0);

/// `STATE` is `epoch << 32 | next << 16 | parts`: the job's number, the next unclaimed part and
/// the part count. One word, so claiming a part (compare-exchange) also proves the job is still
/// the current one, which is what makes reading `TASK` afterwards sound.
static STATE: AtomicU64 = AtomicU64::new(0);
/// Parts of the current job finished (by anyone).
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Helpers spawned and not yet gone.
static HELPERS: AtomicUsize = AtomicUsize::new(0);
/// Held by the one caller whose job is published; another caller meanwhile runs on its own thread.
static BUSY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether rayon's pool can take helpers. Natively rayon starts its pool on first use; in the wasm
/// threads build the pool's workers start in the background ([`set_pool_ready`]) and any rayon
/// call before they are up would build a pool of its own that cannot start threads there. Until
/// then every job runs on the calling thread.
static POOL_READY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Says whether helpers may be started on rayon's pool (the wasm threads build clears this while
/// its pool's workers start, and sets it once they are up).
pub fn set_pool_ready(ready: bool) {
    POOL_READY.store(ready, Release);
}

/// Helpers the pool can give a job over `threads` threads (0 while the pool is not up).
fn pool_helpers(threads: usize) -> usize {
    if !POOL_READY.load(Acquire) {
        return 0;
    }
    threads.saturating_sub(1).min(rayon::current_num_threads())
}

/// Set when a part panicked (natively; wasm aborts), so the caller panics too.
static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The current job: runs part `i`. Written only by the `BUSY` holder while no part can be claimed.
struct TaskCell(UnsafeCell<Option<&'static (dyn Fn(usize) + Sync)>>);
// SAFETY: see `STATE`: readers read only after claiming a part of the job it belongs to, and the
// writer writes only when every part of the previous job is done.
unsafe impl Sync for TaskCell {}
static TASK: TaskCell = TaskCell(UnsafeCell::new(None));

/// Parts per job at most (`STATE` holds the count in 16 bits).
const MAX_PARTS: usize = 0xffff;

fn unpack(s: u64) -> (usize, usize) {
    (((s >> 16) & 0xffff) as usize, (s & 0xffff) as usize)
}

/// Claims one part of the current job, if any is left: its index.
fn claim() -> Option<usize> {
    let mut s = STATE.load(Acquire);
    loop {
        let (next, parts) = unpack(s);
        if next >= parts {
            return None;
        }
        match STATE.compare_exchange_weak(s, s + (1 << 16), AcqRel, Acquire) {
            Ok(_) => return Some(next),
            Err(now) => s = now,
        }
    }
}

/// Runs claimed part `i` of the current job and counts it done, even if it panics.
fn run_claimed(i: usize) {
    // SAFETY: a part is claimed, so the job is current and `TASK` holds its function until
    // `DONE` reaches its part count, which this call's increment is part of.
    let task = unsafe { *TASK.0.get() }.expect("a claimed part has a task");
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(i))).is_err() {
        PANICKED.store(true, Relaxed);
    }
    DONE.fetch_add(1, Release);
}

fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static T0: OnceLock<std::time::Instant> = OnceLock::new();
        T0.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// A helper's life: claim parts while there are any; then, during a pass, spin up to [`SPIN_MS`]
/// for more, else [`GRACE_SPINS`] times; then leave.
fn helper() {
    let mut idle_since = None;
    let mut spins = 0u32;
    loop {
        if let Some(i) = claim() {
            run_claimed(i);
            idle_since = None;
            spins = 0;
            continue;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if PASSES.load(Relaxed) == 0 {
            if spins > GRACE_SPINS {
                break;
            }
            continue;
        }
        // The clock is a call into the host in wasm; read it every few thousand spins.
        if spins % 4096 == 0 {
            let t = now_ms();
            match idle_since {
                None => idle_since = Some(t),
                Some(t0) if t - t0 > SPIN_MS => break,
                Some(_) => {}
            }
        }
    }
    HELPERS.fetch_sub(1, AcqRel);
}

/// A pass over a model's layers, from creation to drop: wakes the helpers a split over `threads`
/// would use at once, without waiting for them, so that pool threads asleep since the last pass
/// (a wake from `Atomics.wait` takes ~0.1-0.2 ms in a browser) are up by its first split GEMM,
/// and keeps them spinning between its layers.
pub(crate) struct PassGuard(bool);

impl PassGuard {
    pub(crate) fn new(threads: usize) -> PassGuard {
        if threads <= 1 {
            return PassGuard(false);
        }
        PASSES.fetch_add(1, AcqRel);
        wake(threads);
        PassGuard(true)
    }
}

impl Drop for PassGuard {
    fn drop(&mut self) {
        if self.0 {
            PASSES.fetch_sub(1, AcqRel);
        }
    }
}

/// Starts the helpers a job over `threads` threads would use, if they are not running, without
/// waiting for them.
pub(crate) fn wake(threads: usize) {
    let helpers = pool_helpers(threads);
    while HELPERS.load(Acquire) < helpers {
        HELPERS.fetch_add(1, AcqRel);
        rayon::spawn(helper);
    }
}

/// One slot per part; each index is claimed exactly once, so each slot is taken once.
struct Slots<P>(Vec<UnsafeCell<Option<P>>>);
// SAFETY: slot `i` is only touched by whoever claimed part `i`, once.
unsafe impl<P: Send> Sync for Slots<P> {}

impl<P> Slots<P> {
    /// Part `i`'s value; the caller claimed part `i`.
    fn take(&self, i: usize) -> P {
        // SAFETY: see `Slots`.
        unsafe { (*self.0[i].get()).take() }.expect("a part is claimed once")
    }
}

/// Runs `f` on every part, split over up to `threads` threads (this one included), and returns
/// when all are done. On one thread (or one part, or while another caller's job is running) the
/// parts run here in order.
pub(crate) fn run_parts<P: Send>(parts: Vec<P>, threads: usize, f: &(dyn Fn(P) + Sync)) {
    let n = parts.len();
    let helpers = pool_helpers(threads).min(n.saturating_sub(1));
    if helpers == 0 || n > MAX_PARTS || BUSY.compare_exchange(false, true, Acquire, Relaxed).is_err() {
        parts.into_iter().for_each(f);
        return;
    }
    let slots = Slots(parts.into_iter().map(|p| UnsafeCell::new(Some(p))).collect());
    let task = |i: usize| f(slots.take(i));
    let task: &(dyn Fn(usize) + Sync) = &task;
    // SAFETY: the reference is erased to 'static only while this call waits for every part
    // to be done, after which no one reads it: the next job overwrites it first.
    let task: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(task) };
    // No part of the previous job is claimable (all were done before its caller returned), so
    // no one reads TASK now.
    unsafe { *TASK.0.get() = Some(task) };
    DONE.store(0, Relaxed);
    let epoch = (STATE.load(Relaxed) >> 32).wrapping_add(1);
    STATE.store(epoch << 32 | n as u64, Release);
    wake(helpers + 1);
    while let Some(i) = claim() {
        run_claimed(i);
    }
    while DONE.load(Acquire) < n {
        std::hint::spin_loop();
    }
    let panicked = PANICKED.swap(false, Relaxed);
    BUSY.store(false, Release);
    if panicked {
        panic!("a thread panicked in a split kernel");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part runs exactly once with its own value, over many jobs in a row (helpers
    /// spinning between them) and from several callers at once (one gets the team, the others
    /// run on their own threads).
    #[test]
    fn every_part_runs_once() {
        let callers: Vec<_> = (0..3)
            .map(|c| {
                std::thread::spawn(move || {
                    for job in 0..300usize {
                        let n = 1 + (job * 7 + c) % 23;
                        let mut out = vec![0u64; n];
                        let parts: Vec<(usize, &mut u64)> = out.iter_mut().enumerate().collect();
                        run_parts(parts, 1 + job % 4, &|(i, o)| *o += (job * 1000 + i) as u64 + 1);
                        let want: Vec<u64> = (0..n).map(|i| (job * 1000 + i) as u64 + 1).collect();
                        assert_eq!(out, want, "caller {c}, job {job}");
                    }
                })
            })
            .collect();
        for c in callers {
            c.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_part_panics_the_caller_and_leaves_the_team_usable() {
        let r = std::panic::catch_unwind(|| run_parts((0..8).collect(), 2, &|i: i32| assert_ne!(i, 5, "part 5 fails")));
        assert!(r.is_err());
        let sum = AtomicUsize::new(0);
        run_parts((0..8).collect(), 2, &|i: usize| {
            sum.fetch_add(i, Relaxed);
        });
        assert_eq!(sum.into_inner(), 28);
    }
}
