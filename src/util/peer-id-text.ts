// How people read a peer id: 52 characters are too many to compare by eye, the start
// and the end are enough (`12D3…zRadrU`). Machine-readable output (--json) keeps ids whole.

/** first 4, an ellipsis, last 6; shorter ids (not peer ids) as they are */
export function shortPeerId (id: string): string {
  return id.length > 12 ? `${id.slice(0, 4)}…${id.slice(-6)}` : id
}
