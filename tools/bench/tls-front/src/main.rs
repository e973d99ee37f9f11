//! `bench-tls-front CERT_CHAIN_PEM KEY_PEM UPSTREAM_PORT`: accepts TLS on an ephemeral port of
//! 127.0.0.1 and forwards each connection's plaintext to `127.0.0.1:UPSTREAM_PORT` (DynamoDB
//! Local, which speaks plain HTTP only), so that clients pay a TLS handshake and record
//! encryption as they do against DynamoDB's endpoints.
//!
//! Prints `port N` on stdout once listening. On stderr, one line per handshake: the TLS
//! version, the cipher suite and the key-exchange group it agreed on. Stops when stdin
//! closes, so it never outlives the harness that started it.

use std::io::Read;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{copy_bidirectional, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [chain, key, upstream] = args.as_slice() else {
        eprintln!("usage: bench-tls-front CERT_CHAIN_PEM KEY_PEM UPSTREAM_PORT");
        std::process::exit(2);
    };
    let upstream: u16 = upstream.parse().expect("UPSTREAM_PORT is a port number");
    let chain = CertificateDer::pem_file_iter(chain)
        .expect("certificate chain readable")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate chain is PEM");
    let key = PrivateKeyDer::from_pem_file(key).expect("private key is PEM");
    // rustls' defaults with aws-lc-rs: TLS 1.3 and 1.2, X25519MLKEM768 and X25519 among the
    // groups. Each client offers what its own crypto supports.
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate and key match");
    let acceptor = TlsAcceptor::from(Arc::new(config));

    // Exit when the parent closes stdin (or dies).
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        println!("port {}", listener.local_addr().expect("address").port());
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Err(error) = serve(acceptor, client, upstream).await {
                    eprintln!("connection: {error}");
                }
            });
        }
    });
}

async fn serve(acceptor: TlsAcceptor, client: TcpStream, upstream: u16) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut tls = acceptor.accept(client).await?;
    {
        let (_, session) = tls.get_ref();
        let none = || "none".to_owned();
        eprintln!(
            "handshake {} {} {}",
            session
                .protocol_version()
                .map_or_else(none, |v| format!("{v:?}")),
            session
                .negotiated_cipher_suite()
                .map_or_else(none, |s| format!("{:?}", s.suite())),
            session
                .negotiated_key_exchange_group()
                .map_or_else(none, |g| format!("{:?}", g.name())),
        );
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream)).await?;
    upstream.set_nodelay(true)?;
    let result = copy_bidirectional(&mut tls, &mut upstream).await;
    let _ = tls.shutdown().await;
    result.map(|_| ())
}
