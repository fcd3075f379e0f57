//! The public reads of a [`ZarrArray`]: a [`Selection`] checked against the array and bounded
//! by the read limit, the chunks it touches fetched (concurrently) and placed into the output,
//! with a copy-free path when one chunk already is the result; CF decoding for `read_f32`.

use super::fetch::Decoded;
use super::place::{chunk_is_selection, chunks_of, in_output_order, place_runs, runs_of, scatter};
use super::{ElementType, Selection, ZarrArray};
use crate::ZarrError;
use crate::cf::CfDecoding;
use crate::decode::Compression;
use futures::StreamExt;
use ndarray::{ArrayD, IxDyn};
use zarrs::array::{ElementOwned, FromArrayBytes};

impl ZarrArray {
    /// Reads a 1-D array (a coordinate) whole, as f64.
    pub async fn read_coordinate(&self) -> Result<Vec<f64>, ZarrError> {
        if self.dims.len() != 1 {
            return Err(ZarrError::format(
                &self.store,
                &self.name,
                format!(
                    "a coordinate must be 1-dimensional, this has dims {:?}",
                    self.dims
                ),
            ));
        }
        Ok(self
            .read_f64(&[Selection::All])
            .await?
            .into_raw_vec_and_offset()
            .0)
    }

    /// Reads a selection as f64 (any supported element type). The result keeps the dimensions
    /// that are not selected by [`Selection::Index`], in storage order.
    pub async fn read_f64(&self, selection: &[Selection]) -> Result<ArrayD<f64>, ZarrError> {
        Ok(match self.element {
            ElementType::F64 => self.read_typed::<f64>(selection).await?,
            ElementType::F32 => self.read_typed::<f32>(selection).await?.mapv(f64::from),
            ElementType::I8 => self.read_typed::<i8>(selection).await?.mapv(f64::from),
            ElementType::U8 => self.read_typed::<u8>(selection).await?.mapv(f64::from),
            ElementType::I16 => self.read_typed::<i16>(selection).await?.mapv(f64::from),
            ElementType::U16 => self.read_typed::<u16>(selection).await?.mapv(f64::from),
            ElementType::I32 => self.read_typed::<i32>(selection).await?.mapv(f64::from),
            ElementType::U32 => self.read_typed::<u32>(selection).await?.mapv(f64::from),
            ElementType::I64 => self.read_typed::<i64>(selection).await?.mapv(|v| v as f64),
        })
    }

    /// Reads a selection of a data variable as f32, CF-decoded ([`CfDecoding`]: fill values
    /// to NaN, `scale_factor`, `add_offset`); f64 data is narrowed, integer data widened. The
    /// result keeps the dimensions that are not selected by [`Selection::Index`], in storage
    /// order.
    pub async fn read_f32(&self, selection: &[Selection]) -> Result<ArrayD<f32>, ZarrError> {
        // integers widen: bound the f32 result too, before anything is read
        self.check_selection(selection)?;
        self.check_read_bytes(selection, 4)?;
        let cf = self.cf.as_ref();
        Ok(match self.element {
            ElementType::F32 => {
                let mut data = self.read_typed::<f32>(selection).await?;
                if let Some(cf) = cf {
                    data.mapv_inplace(|v| cf.decode(f64::from(v)));
                }
                data
            }
            ElementType::F64 => widen(self.read_typed::<f64>(selection).await?, cf, |v| v),
            ElementType::I8 => widen(self.read_typed::<i8>(selection).await?, cf, f64::from),
            ElementType::U8 => widen(self.read_typed::<u8>(selection).await?, cf, f64::from),
            ElementType::I16 => widen(self.read_typed::<i16>(selection).await?, cf, f64::from),
            ElementType::U16 => widen(self.read_typed::<u16>(selection).await?, cf, f64::from),
            ElementType::I32 => widen(self.read_typed::<i32>(selection).await?, cf, f64::from),
            ElementType::U32 => widen(self.read_typed::<u32>(selection).await?, cf, f64::from),
            ElementType::I64 => widen(self.read_typed::<i64>(selection).await?, cf, |v| v as f64),
        })
    }

    /// Refuses a read whose result (selection × `element_size`) exceeds the read limit.
    fn check_read_bytes(
        &self,
        selection: &[Selection],
        element_size: u64,
    ) -> Result<(), ZarrError> {
        let out_bytes = selection
            .iter()
            .zip(self.shape())
            .filter_map(|(sel, n)| match sel {
                Selection::Index(_) => None,
                Selection::Indices(v) => Some(v.len() as u64),
                Selection::All => Some(*n),
            })
            .fold(element_size, u64::saturating_mul);
        if out_bytes > self.options.max_read_bytes {
            return Err(ZarrError::TooLarge {
                store: self.store.clone(),
                key: self.name.clone(),
                size: out_bytes,
                limit: self.options.max_read_bytes,
                what: "one read (selection size × element size)",
            });
        }
        Ok(())
    }

    async fn read_typed<T>(&self, selection: &[Selection]) -> Result<ArrayD<T>, ZarrError>
    where
        T: ElementOwned + bytemuck::Pod + Default + Send + Sync,
        Vec<T>: FromArrayBytes,
    {
        let shape = self.shape().to_vec();
        self.check_selection(selection)?;
        let chunk_bytes = self.chunk_decoded_bytes();
        if chunk_bytes > self.options.max_chunk_bytes {
            return Err(ZarrError::TooLarge {
                store: self.store.clone(),
                key: self.name.clone(),
                size: chunk_bytes,
                limit: self.options.max_chunk_bytes,
                what: "one decoded chunk (chunk shape × element size)",
            });
        }
        let out_shape: Vec<usize> = selection
            .iter()
            .zip(&shape)
            .filter_map(|(sel, n)| match sel {
                Selection::Index(_) => None,
                Selection::Indices(v) => Some(v.len()),
                Selection::All => Some(*n as usize),
            })
            .collect();
        self.check_read_bytes(selection, std::mem::size_of::<T>() as u64)?;
        let chunk_shape = self.chunk_shape();
        let chunks = chunks_of(&chunk_shape, &shape, selection);
        let out_len: usize = out_shape.iter().product();
        if let [only] = chunks.as_slice()
            && chunk_is_selection(&chunk_shape, &shape, selection)
        {
            // The usual read (one valid time of a variable chunked by time): the decoded chunk
            // already is the result, in order, so it is returned without a copy.
            let values = self.read_chunk::<T>(only).await?;
            return ArrayD::from_shape_vec(IxDyn(&out_shape), values)
                .map_err(|e| self.err(format!("internal shape error: {e}")));
        }
        // Blosc chunks of which the selection keeps a part (37 ARCO levels, 13 scored) decode
        // only the blocks that part overlaps: the runs the selection copies out of each chunk
        let partial = self.codecs.sharding.is_none()
            && self.codecs.encoding.compression == Compression::Blosc;
        if partial
            && let [only] = chunks.as_slice()
            && let runs = runs_of(&out_shape, &chunk_shape, only, &shape, selection)
            && in_output_order(&runs, out_len)
        {
            // one chunk whose runs, concatenated, are the result: no copy, no zeroed output
            match self.read_chunk_part::<T>(only, Some(runs)).await? {
                Decoded::Runs(values, _) => {
                    return ArrayD::from_shape_vec(IxDyn(&out_shape), values)
                        .map_err(|e| self.err(format!("internal shape error: {e}")));
                }
                Decoded::Whole(values) => {
                    let mut out = vec![T::default(); out_len];
                    scatter(
                        &mut out,
                        &out_shape,
                        &values,
                        &chunk_shape,
                        only,
                        &shape,
                        selection,
                    );
                    return ArrayD::from_shape_vec(IxDyn(&out_shape), out)
                        .map_err(|e| self.err(format!("internal shape error: {e}")));
                }
            }
        }
        let mut out = vec![T::default(); out_len];
        let (out_shape_ref, chunk_shape_ref, shape_ref) = (&out_shape, &chunk_shape, &shape);
        let mut stream = futures::stream::iter(chunks.into_iter().map(|ci| async move {
            let runs =
                partial.then(|| runs_of(out_shape_ref, chunk_shape_ref, &ci, shape_ref, selection));
            let values = self.read_chunk_part::<T>(&ci, runs).await?;
            Ok::<_, ZarrError>((ci, values))
        }))
        .buffer_unordered(self.options.max_concurrent_chunks.max(1));
        while let Some(result) = stream.next().await {
            match result? {
                (ci, Decoded::Whole(values)) => scatter(
                    &mut out,
                    &out_shape,
                    &values,
                    &chunk_shape,
                    &ci,
                    &shape,
                    selection,
                ),
                (_, Decoded::Runs(values, runs)) => place_runs(&mut out, &values, &runs),
            }
        }
        ArrayD::from_shape_vec(IxDyn(&out_shape), out)
            .map_err(|e| self.err(format!("internal shape error: {e}")))
    }

    /// Checks that a selection has one entry per dimension and only indices inside the array.
    pub(super) fn check_selection(&self, selection: &[Selection]) -> Result<(), ZarrError> {
        let shape = self.shape();
        let ndim = shape.len();
        if selection.len() != ndim {
            return Err(self.err(format!(
                "selection has {} entries for {} dimensions",
                selection.len(),
                ndim
            )));
        }
        for (d, sel) in selection.iter().enumerate() {
            let bad = match sel {
                Selection::Index(i) => (*i >= shape[d]).then_some(*i),
                Selection::Indices(v) => v.iter().copied().find(|i| *i >= shape[d]),
                Selection::All => None,
            };
            if let Some(i) = bad {
                return Err(self.err(format!(
                    "index {i} is outside dimension `{}` of length {}",
                    self.dims[d], shape[d]
                )));
            }
        }
        Ok(())
    }
}

/// Widens (or narrows) data values to f32 through the CF decoding, if any.
fn widen<T: Copy>(
    data: ArrayD<T>,
    cf: Option<&CfDecoding>,
    to_f64: impl Fn(T) -> f64,
) -> ArrayD<f32> {
    match cf {
        Some(cf) => data.mapv(|v| cf.decode(to_f64(v))),
        None => data.mapv(|v| to_f64(v) as f32),
    }
}
