// Stock per sku. A reservation takes all of an order's lines or none: one message runs
// at a time, so checking and then taking cannot interleave with another order.
export default class Inventory {
  stock = { apple: 20, pear: 10, plum: 5, fig: 0 }

  list () {
    return this.stock
  }

  reserve (items) {
    const wanted = {}
    for (const { sku, qty } of items) wanted[sku] = (wanted[sku] ?? 0) + qty
    for (const [sku, qty] of Object.entries(wanted)) {
      if ((this.stock[sku] ?? 0) < qty) throw new Error(`out of stock: ${sku} (${this.stock[sku] ?? 0} left, ${qty} wanted)`)
    }
    for (const [sku, qty] of Object.entries(wanted)) this.stock[sku] -= qty
    return this.stock
  }

  restock ({ body }) {
    const { sku, qty } = body ?? {}
    if (typeof sku !== 'string' || sku === '') throw new Error('body.sku must be a name')
    if (!Number.isSafeInteger(qty) || qty < 1) throw new Error('body.qty must be a whole number ≥ 1')
    this.stock[sku] = (this.stock[sku] ?? 0) + qty
    return this.stock
  }
}
