//! The control loop's side of the status page (`observe::page`): what `/` and
//! `/status.json` show, read at the moment of asking, and the states noted at each rate
//! sample so the page can say since when.

use serde_json::Value;

use super::{server_rows, Daemon};
use crate::observe::counters::AllWorkers;
use crate::observe::metrics::View;
use crate::observe::page::{self, html, Parts};
use crate::observe::status;

pub use crate::observe::page::LastReload;

pub use crate::calendar::unix_now;
impl Daemon<'_> {
    /// What the metrics listener asked for, rendered.
    pub(super) fn render_view(&mut self, view: View) -> String {
        match view {
            View::Metrics => self.scrape(),
            View::Page => html::render(&self.overview()),
            View::Json => serde_json::to_string_pretty(&self.overview()).unwrap_or_default() + "\n",
        }
    }

    /// Notes each real server's state now (see `status::Notes`).
    pub(super) fn note_states(&mut self) {
        if let Some(l) = self.lb.as_mut() {
            let mut rows = server_rows(l, &self.cfg, &self.rates);
            self.notes.annotate(&self.cfg, &l.health, &mut rows);
        }
    }

    /// The page's JSON twin.
    fn overview(&mut self) -> Value {
        let rows = match self.lb.as_mut() {
            Some(l) => {
                let mut rows = server_rows(l, &self.cfg, &self.rates);
                self.notes.annotate(&self.cfg, &l.health, &mut rows);
                rows
            }
            None => Vec::new(),
        };
        let (sync, drops) = match self.lb.as_ref() {
            Some(l) => {
                let w = AllWorkers(l.workers.counters());
                let sync = l
                    .sync
                    .as_ref()
                    .map(|s| status::render_sync(&s.thread.stats, w, true));
                let drops = status::render_drops(l.steer.counters().ok().as_ref(), w, true);
                (sync.and_then(|t| parse(&t)), parse(&drops))
            }
            None => (None, None),
        };
        let vrrp = self
            .vrrp
            .stats()
            .iter()
            .map(|(name, s)| {
                let cfg = self.cfg.vrrp_instances.iter().find(|i| &i.name == name);
                (
                    name.as_str(),
                    cfg.map_or("", |c| c.interface.value.as_str()),
                    &**s,
                    cfg.map_or(0, |c| c.priority),
                )
            })
            .collect();
        page::overview(&Parts {
            interface: &self.ifaces.external.name,
            generation: self.lb.as_ref().map_or(0, |l| l.generation),
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            last_reload: self.last_reload.as_ref(),
            servers: &rows,
            vrrp,
            sync,
            drops,
        })
    }
}

/// A view's JSON text as a value (`None` if it is not JSON).
fn parse(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}
