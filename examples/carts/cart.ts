// One keyed cell instance per user's cart (`keyed: true`: addressed carts/cart/<user>,
// activated by its first message, passivated after `idle`). Each change (re)arms a
// reminder that empties the cart after IDLE_MS without another change; the reminder wakes
// the cart if it was passivated meanwhile. `?idle=ms` on POST sets a shorter idle time to
// watch it happen. The stats cell counts carts opened and expired.
import type { HttpRequest, ReminderMeta } from 'stem/cell'

const IDLE_MS = 30 * 60 * 1000

export default class Cart {
  items: Record<string, number> = {}
  /** the id of the reminder that expires the cart ('' while it is empty) */
  expiry = ''
  /** when it expires, ms since the epoch */
  expiresAt = 0

  get () {
    if (this.expiry === '') throw stem.error(404, `no cart for ${String(stem.key)}`)
    return { user: stem.key, items: this.items, expiresAt: this.expiresAt }
  }

  add ({ query, body }: HttpRequest<{ user: string }, { sku?: unknown, qty?: unknown }>) {
    const sku = body?.sku
    const qty = body?.qty ?? 1
    if (typeof sku !== 'string' || sku.length === 0 || sku.length > 64) throw stem.error(400, 'body.sku must be a string of 1-64 characters')
    if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty < 1 || qty > 1000) throw stem.error(400, 'body.qty must be a whole number 1-1000')
    const idle = query.idle === undefined ? IDLE_MS : Number(query.idle)
    if (!Number.isSafeInteger(idle) || idle < 10 || idle > IDLE_MS) throw stem.error(400, `idle must be a whole number of ms, 10-${IDLE_MS}`)
    if (this.expiry === '') stem.tell('carts/stats', 'cartOpened')
    this.items[sku] = (this.items[sku] ?? 0) + qty
    // a change restarts the idle time: the previous reminder goes, a new one comes
    if (this.expiry !== '') stem.cancel(this.expiry)
    this.expiry = stem.schedule(idle, 'expire')
    this.expiresAt = stem.now() + idle
    return { user: stem.key, items: this.items, expiresAt: this.expiresAt }
  }

  expire ({ reminder, due }: ReminderMeta) {
    // fired again after a failover, or replaced by a later change: nothing to do
    if (this.expiry !== reminder) return
    this.items = {}
    this.expiry = ''
    this.expiresAt = 0
    stem.tell('carts/stats', 'cartExpired')
    stem.log(`the cart of ${String(stem.key)} expired after being idle (${stem.now() - due} ms after it was due)`)
  }
}
