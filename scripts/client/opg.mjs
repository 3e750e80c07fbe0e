// What the client scripts share: the canonical tensor layout (tensors travel as SCALE bytes;
// the client registers their layout to build and read them) and the OPG unit.
export const TYPES = {
  OpgElemType: { _enum: ['F32', 'F64', 'I8', 'U8', 'I32', 'I64', 'Bool'] },
  OpgTensor: { elem: 'OpgElemType', shape: 'Vec<u32>', data: 'Bytes' },
};
// 1 OPG in plancks (18 decimals).
export const UNIT = 10n ** 18n;
