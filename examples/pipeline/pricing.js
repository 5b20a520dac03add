// Prices in cents. Stateless apart from the price list, so it runs as two replicas.
const prices = { apple: 50, pear: 75, plum: 120, fig: 210 }

export default class Pricing {
  list () {
    return prices
  }

  quote (items) {
    const lines = items.map(({ sku, qty }) => {
      if (!Object.hasOwn(prices, sku)) throw new Error(`unknown sku ${JSON.stringify(sku)}`)
      if (!Number.isSafeInteger(qty) || qty < 1) throw new Error(`qty of ${sku} must be a whole number ≥ 1`)
      return { sku, qty, price: prices[sku], amount: prices[sku] * qty }
    })
    return { lines, total: lines.reduce((sum, line) => sum + line.amount, 0) }
  }
}
