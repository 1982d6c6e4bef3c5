//! The tokio adapter that drives [`crate::proto`] over any `AsyncRead + AsyncWrite`.
