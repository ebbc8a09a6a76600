//! The streaming RDB reader (placeholder until the reader lands).
