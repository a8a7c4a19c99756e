//! The reference for bench/compare.sh in Rust: socketioxide (0.18) with the events of
//! bench/routes.toml, as a socketioxide user writes them:
//!
//! ```text
//! "chat message" = "io"        io.emit("chat message", data)
//! echo = { ack = "{args}" }    the ack answers with the data
//! ping = "emit"                socket.emit("ping", data)
//! ```
//!
//! `socketioxide-peer [--listen 127.0.0.1:0]` prints `socketioxide listening on
//! http://HOST:PORT` once bound. The load generator sends one argument per event.

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = match args.iter().position(|a| a == "--listen") {
        Some(i) => args.get(i + 1).ok_or("--listen needs an address")?.clone(),
        None => "127.0.0.1:0".to_owned(),
    };

    let (svc, io) = SocketIo::new_svc();
    io.ns("/", async |socket: SocketRef| {
        socket.on(
            "chat message",
            async |socket: SocketRef, io: SocketIo, Data::<Value>(data), ack: AckSender| {
                let _ = ack.send(&());
                let _ = io.emit("chat message", &data).await;
                drop(socket);
            },
        );
        socket.on("echo", async |Data::<Value>(data), ack: AckSender| {
            let _ = ack.send(&data);
        });
        socket.on(
            "ping",
            async |socket: SocketRef, Data::<Value>(data), ack: AckSender| {
                let _ = socket.emit("ping", &data);
                let _ = ack.send(&());
            },
        );
    });

    let listener = TcpListener::bind(&listen).await?;
    println!(
        "socketioxide listening on http://{}",
        listener.local_addr()?
    );
    let accept = async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    };
    tokio::select! {
        () = accept => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
