//! A loopback TCP proxy that sends new connections to whichever hub it is
//! pointed at, and can cut the current ones: a client moved between hubs,
//! as a load balancer moves it when a hub goes away.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::TestHub;

pub struct Switch {
    /// `ws://` URL of the quotes route through the proxy.
    pub url: String,
    target: Arc<Mutex<SocketAddr>>,
    cut: watch::Sender<u64>,
}

impl Switch {
    pub async fn start(hub: &TestHub) -> Self {
        let target = Arc::new(Mutex::new(hub.addr().parse().unwrap()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/v1/quotes", listener.local_addr().unwrap());
        let (cut, cuts) = watch::channel(0u64);
        let to = Arc::clone(&target);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                let addr = *to.lock().unwrap();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(addr).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { url, target, cut }
    }

    /// Points new connections at `hub` and cuts the current ones.
    pub fn move_to(&self, hub: &TestHub) {
        *self.target.lock().unwrap() = hub.addr().parse().unwrap();
        self.cut.send_modify(|n| *n += 1);
    }
}
