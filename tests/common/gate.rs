//! A loopback TCP proxy in front of one address that can be shut: shut, it
//! cuts its connections and turns new ones away until opened again. A hub
//! behind it loses the server while others keep it, so a test decides
//! which of them comes back first.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Gate {
    /// `HOST:PORT` to connect to instead of the server's.
    pub addr: String,
    open: Arc<watch::Sender<bool>>,
}

impl Gate {
    /// An open gate in front of `target` (`HOST:PORT`).
    pub async fn start(target: &str) -> Self {
        let target: std::net::SocketAddr = target.parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (open, _) = watch::channel(true);
        let open = Arc::new(open);
        let state = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut shut = state.subscribe();
                if !*shut.borrow_and_update() {
                    continue; // dropped: turned away
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = shut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { addr, open }
    }

    /// Cuts the connections through the gate and turns new ones away.
    pub fn shut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}
