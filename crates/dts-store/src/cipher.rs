//! Secrets at rest: ChaCha20-Poly1305 with a 32-byte key file (mode 0600) in the data dir.
//!
//! Each value gets a fresh random nonce; the stored form is base64(nonce || ciphertext). The
//! associated data names the row and field, so a ciphertext moved to another row fails to open.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::StoreError;

/// Encrypts and decrypts secrets with the data dir's key.
pub struct SecretCipher {
    aead: ChaCha20Poly1305,
}

impl SecretCipher {
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let io = |e| StoreError::Io(path.display().to_string(), e);
        let key = match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => return Err(StoreError::Corrupt(format!("{} is not a 32-byte key", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                OsRng.fill_bytes(&mut key);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(io)?;
                f.write_all(&key).map_err(io)?;
                f.sync_all().map_err(io)?;
                key
            }
            Err(e) => return Err(io(e)),
        };
        Ok(Self { aead: ChaCha20Poly1305::new(Key::from_slice(&key)) })
    }

    pub fn encrypt(&self, plaintext: &str, aad: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .aead
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .expect("chacha20poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<String, StoreError> {
        let raw = STANDARD.decode(stored).map_err(|_| StoreError::Decrypt)?;
        if raw.len() < 12 {
            return Err(StoreError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .aead
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| StoreError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| StoreError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_round_trips_and_cannot_be_moved_to_another_row() {
        let dir = tempfile::tempdir().unwrap();
        let c = SecretCipher::load_or_create(&dir.path().join("k")).unwrap();
        let sealed = c.encrypt("p w&=+/", "job:a:src");
        assert!(!sealed.contains("p w"));
        assert_eq!(c.decrypt(&sealed, "job:a:src").unwrap(), "p w&=+/");
        assert!(c.decrypt(&sealed, "job:b:src").is_err());
        let again = SecretCipher::load_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(again.decrypt(&sealed, "job:a:src").unwrap(), "p w&=+/");
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        SecretCipher::load_or_create(&dir.path().join("k")).unwrap();
        let mode = std::fs::metadata(dir.path().join("k")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
