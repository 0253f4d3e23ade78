//! The one input of every loop besides its packets and timers: signals,
//! management commands with their reply path, and the results of work the
//! loop handed to a task (a client's authentication). A new kind of input
//! is one variant here and one arm in the loop's `on_input`, not an arm in
//! each `select!`.

use tokio::sync::{mpsc, oneshot};

use crate::host::process::{Signal, Signals};
use crate::mgmt::protocol::Command;
use crate::tunnel::auth::AuthResult;

/// Something for the loop to act on.
#[derive(Debug)]
pub enum Input {
    /// A process signal (or `remap-usr1`'s rewrite of one).
    Signal(Signal),
    /// A management command; the loop answers on `reply` with the text
    /// the management client gets.
    Mgmt {
        /// The parsed command.
        command: Command,
        /// Where the answer goes.
        reply: oneshot::Sender<String>,
    },
    /// A client's authentication task finished (server).
    Auth(Box<AuthResult>),
}

/// A handle for tasks that feed the loop (auth tasks, a management
/// listener). Sending never blocks; the loop drains in order.
pub type InputSender = mpsc::UnboundedSender<Input>;

/// Signals and the task channel, read as one stream.
pub struct Inputs {
    signals: Signals,
    tx: InputSender,
    rx: mpsc::UnboundedReceiver<Input>,
}

impl Inputs {
    /// Wraps the process's signal handlers.
    pub fn new(signals: Signals) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { signals, tx, rx }
    }

    /// A sender for a task whose results the loop takes as [`Input`]s.
    pub fn sender(&self) -> InputSender {
        self.tx.clone()
    }

    /// The next input of any kind. Signals first when both are ready, so a
    /// flood of task results cannot delay SIGTERM. Cancel-safe.
    pub async fn recv(&mut self) -> Input {
        tokio::select! {
            biased;
            s = self.signals.recv() => Input::Signal(s),
            Some(i) = self.rx.recv() => i,
        }
    }

    /// The next signal only (while the loop is not ready for anything else:
    /// resolving, connecting, waiting to retry). Other inputs stay queued.
    pub async fn signal(&mut self) -> Signal {
        self.signals.recv().await
    }
}
