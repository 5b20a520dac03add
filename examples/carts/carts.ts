// One cell holding every user's cart. Each change (re)arms a reminder that drops the cart
// after IDLE_MS without another change; `?idle=ms` on POST sets a shorter idle time to
// watch it happen. (One instance per user is what keyed cells will give; the reminder
// works the same way there.)
import type { HttpRequest, ReminderMeta } from 'stem/cell'

const IDLE_MS = 30 * 60 * 1000
const USER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

interface Cart {
  items: Record<string, number>
  /** the id of the reminder that expires the cart */
  expiry: string
  /** when it expires, ms since the epoch */
  expiresAt: number
}

export default class Carts {
  carts: Record<string, Cart> = {}
  expired = 0

  list () {
    return { carts: Object.keys(this.carts).length, expired: this.expired, reminders: stem.reminders().length }
  }

  get ({ params }: HttpRequest<{ user: string }>) {
    const cart = this._cartOf(params.user)
    if (cart === undefined) throw stem.error(404, `no cart for ${params.user}`)
    return { user: params.user, items: cart.items, expiresAt: cart.expiresAt }
  }

  add ({ params, query, body }: HttpRequest<{ user: string }, { sku?: unknown, qty?: unknown }>) {
    const user = params.user
    if (!USER.test(user)) throw stem.error(400, 'user must be 1-64 letters, digits, _ . or -, starting with a letter or digit')
    const sku = body?.sku
    const qty = body?.qty ?? 1
    if (typeof sku !== 'string' || sku.length === 0 || sku.length > 64) throw stem.error(400, 'body.sku must be a string of 1-64 characters')
    if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty < 1 || qty > 1000) throw stem.error(400, 'body.qty must be a whole number 1-1000')
    const idle = query.idle === undefined ? IDLE_MS : Number(query.idle)
    if (!Number.isSafeInteger(idle) || idle < 10 || idle > IDLE_MS) throw stem.error(400, `idle must be a whole number of ms, 10-${IDLE_MS}`)
    const cart = this._cartOf(user) ?? { items: {}, expiry: '', expiresAt: 0 }
    cart.items[sku] = (cart.items[sku] ?? 0) + qty
    // a change restarts the idle time: the previous reminder goes, a new one comes
    if (cart.expiry !== '') stem.cancel(cart.expiry)
    cart.expiry = stem.schedule(idle, 'expire', user)
    cart.expiresAt = stem.now() + idle
    this.carts[user] = cart
    return { user, items: cart.items, expiresAt: cart.expiresAt }
  }

  expire (user: string, { reminder, due }: ReminderMeta) {
    const cart = this._cartOf(user)
    // fired again after a failover, or replaced by a later change: nothing to do
    if (cart === undefined || cart.expiry !== reminder) return
    delete this.carts[user]
    this.expired++
    stem.log(`the cart of ${user} expired after being idle (${stem.now() - due} ms after it was due)`)
  }

  // not a message: methods starting with _ are not callable from outside
  private _cartOf (user: string): Cart | undefined {
    return Object.hasOwn(this.carts, user) ? this.carts[user] : undefined
  }
}
