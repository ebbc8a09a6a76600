//! TLS to Redis servers (rustls with ring, whatever provider the process installed): `required`
//! encrypts without checking the server's certificate (its handshake signature still is);
//! `verify-full` checks the certificate chain against the job's CA (PEM, `SrcSslCa`/`DstSslCa`)
//! or, without one, the built-in web roots, and checks that it names the host or IP address the
//! job connects to. Cluster nodes are reached at the addresses the cluster announces, so with
//! `verify-full` their certificates must name those addresses.

use std::sync::Arc;

use dts_core::TlsMode;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{RedisError, Result};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The client configuration for `mode`; `None` for a plain connection.
pub fn client_config(mode: &TlsMode) -> Result<Option<Arc<ClientConfig>>> {
    let builder = || {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| RedisError::Tls(e.to_string()))
    };
    let config = match mode {
        TlsMode::Disabled => return Ok(None),
        TlsMode::Required => builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
            .with_no_client_auth(),
        TlsMode::VerifyFull { ca } => {
            let mut roots = RootCertStore::empty();
            match ca {
                Some(pem) => {
                    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                        let cert = cert.map_err(|e| RedisError::Operator(format!("the CA is not PEM: {e}")))?;
                        roots.add(cert).map_err(|e| RedisError::Operator(format!("the CA certificate: {e}")))?;
                    }
                    if roots.is_empty() {
                        return Err(RedisError::Operator("the CA holds no certificate".into()));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder()?.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(Arc::new(config)))
}

/// The TLS handshake over `tcp` with the server the job names `host`.
pub async fn handshake(config: Arc<ClientConfig>, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| RedisError::Operator(format!("`{host}` is not a host name or address TLS can check")))?;
    TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        // A refused certificate or a server that does not speak TLS is rustls's verdict, not
        // the network's: it stays until someone changes a setting.
        match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(verdict) => RedisError::Tls(verdict.to_string()),
            None => RedisError::Io(e),
        }
    })
}

/// `required`: any certificate is accepted; the handshake's signatures are still verified, so
/// the session is encrypted to whoever holds the presented certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_connection_has_no_configuration_and_a_ca_must_hold_a_certificate() {
        assert!(client_config(&TlsMode::Disabled).unwrap().is_none());
        assert!(client_config(&TlsMode::Required).unwrap().is_some());
        assert!(client_config(&TlsMode::VerifyFull { ca: None }).unwrap().is_some());
        let e = client_config(&TlsMode::VerifyFull { ca: Some("not a certificate".into()) }).unwrap_err();
        assert!(matches!(e, RedisError::Operator(_)), "{e:?}");
    }
}
