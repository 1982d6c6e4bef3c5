//! Frame buffers shared by a thread that reads data straight into frames (a file being
//! sent, our stdin) and the writer task that seals them where they lie: a small pool, so the
//! data path neither copies nor allocates per frame.

use crate::proto::DataFrame;

/// Frame buffers for a thread that reads data (a file, our stdin) straight into frames: a
/// filled buffer travels as a [`FrameChunk`] to
/// [`SecureWriter::send_chunk`](crate::transport::SecureWriter::send_chunk), is sealed where
/// it lies, and comes back here when the chunk is dropped, so the data path allocates nothing
/// per frame.
pub struct FramePool {
    back: std::sync::mpsc::Sender<Box<DataFrame>>,
    spare: std::sync::mpsc::Receiver<Box<DataFrame>>,
}

impl FramePool {
    /// An empty pool; buffers are made as needed and reused once they come back.
    pub fn new() -> Self {
        let (back, spare) = std::sync::mpsc::channel();
        Self { back, spare }
    }

    /// A buffer to fill: a returned one if there is one, else a new one.
    pub fn take(&self) -> Box<DataFrame> {
        self.spare.try_recv().unwrap_or_default()
    }

    /// Wraps a buffer whose payload holds `len` bytes of data.
    pub fn chunk(&self, frame: Box<DataFrame>, len: usize) -> FrameChunk {
        FrameChunk {
            frame: Some(frame),
            len,
            back: self.back.clone(),
        }
    }
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

/// Up to [`MAX_CHUNK`](crate::proto::record::MAX_CHUNK) bytes of data in a frame buffer
/// from a [`FramePool`], to which the buffer returns when this is dropped.
pub struct FrameChunk {
    frame: Option<Box<DataFrame>>,
    len: usize,
    back: std::sync::mpsc::Sender<Box<DataFrame>>,
}

impl FrameChunk {
    /// The data.
    pub fn data(&self) -> &[u8] {
        self.frame
            .as_ref()
            .and_then(|frame| frame.payload().get(..self.len))
            .unwrap_or_default()
    }

    /// How many bytes of data it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no data.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame buffer, to seal in place.
    pub fn frame_mut(&mut self) -> Option<&mut DataFrame> {
        self.frame.as_deref_mut()
    }
}

impl std::fmt::Debug for FrameChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameChunk({} bytes)", self.len)
    }
}

impl Drop for FrameChunk {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            let _ = self.back.send(frame);
        }
    }
}
