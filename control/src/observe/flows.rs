//! Asking the workers about their flow tables (`status --connections`, `explain`): each
//! worker answers between two batches, walking its table a slice per loop turn; a
//! worker that does not answer within a second is an error, not a short list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xvs_dataplane::flow::dump::{Answer, FlowDump};
use xvs_dataplane::WorkerCounters;

/// How long the workers get to answer.
const DEADLINE: Duration = Duration::from_secs(1);

/// Asks every worker (`ask` posts the question and returns its number) and waits for
/// all their answers, in worker order.
pub async fn ask(
    workers: &[Arc<WorkerCounters>],
    ask: impl Fn(&FlowDump) -> u64,
) -> Result<Vec<Arc<Answer>>, String> {
    let asked: Vec<u64> = workers.iter().map(|w| ask(&w.flow_dump)).collect();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answers: Vec<_> = workers
            .iter()
            .zip(&asked)
            .filter_map(|(w, seq)| w.flow_dump.answer(*seq))
            .collect();
        if answers.len() == workers.len() {
            return Ok(answers);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {} workers did not answer within {DEADLINE:?}\n",
                workers.len() - answers.len(),
                workers.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_worker_is_an_error() {
        let w = vec![Arc::new(WorkerCounters::new(1))];
        let e = ask(&w, |d| d.request(10)).await.unwrap_err();
        assert!(e.contains("1 of 1 workers did not answer"), "{e}");
    }
}
