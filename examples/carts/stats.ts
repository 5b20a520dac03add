// Counts the carts of the keyed cart cell: opened (first item) and expired, as each cart tells it.
export default class Stats {
  opened = 0
  expired = 0

  cartOpened () { this.opened++ }
  cartExpired () { this.expired++ }

  get () {
    return { carts: this.opened - this.expired, expired: this.expired }
  }
}
