// Takes an order: prices it (pipeline/pricing), reserves the goods (pipeline/inventory),
// then records it. A failure in either step leaves nothing recorded or reserved.
export default class Order {
  orders = {}
  next = 1

  async place ({ body }) {
    const items = body?.items
    if (!Array.isArray(items) || items.length === 0) throw stem.error(400, 'body.items must be a non-empty list of { sku, qty }')
    const quote = await stem.ask('pipeline/pricing', 'quote', items)
    await stem.ask('pipeline/inventory', 'reserve', items)
    const id = String(this.next++)
    const order = { id, items: quote.lines, total: quote.total, at: stem.now() }
    this.orders[id] = order
    stem.log(`order ${id}: ${items.length} line(s), total ${quote.total}`)
    return stem.response(201, order, { location: `/pipeline/orders/${id}` })
  }

  get ({ params }) {
    const order = this.orders[params.id]
    if (order === undefined) throw stem.error(404, `no order ${params.id}`)
    return order
  }
}
