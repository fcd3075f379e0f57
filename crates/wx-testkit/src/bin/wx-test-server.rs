//! `wx-test-server --root DIR [--port N] [--token T]`: serves DIR on 127.0.0.1 like a miner's
//! store server (bearer token required when given), until killed. Prints the base URL on stdout.

use std::net::SocketAddr;

use wx_testkit::{Faults, TestServer};

fn usage() -> ! {
    eprintln!("usage: wx-test-server --root DIR [--port N] [--token TOKEN]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut root = None;
    let mut port = 0u16;
    let mut token = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = Some(args.next().unwrap_or_else(|| usage())),
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--token" => token = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let root = root.unwrap_or_else(|| usage());
    let server = match TestServer::start_on(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &root,
        token.as_deref(),
        Faults::new(),
    )
    .await
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: cannot serve {root}: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", server.url());
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
}
