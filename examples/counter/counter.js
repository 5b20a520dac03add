// A stem cell: the default export is a class, its methods are its messages and its own
// fields are its state. HTTP routes call a method with one argument { params, query, body };
// `stem call counter/counter increment 5` passes the number itself.
export default class Counter {
  count = 0

  get () {
    return { count: this.count }
  }

  increment (input) {
    const by = typeof input === 'number' ? input : (input?.body?.by ?? 1)
    if (!Number.isSafeInteger(by)) throw new Error('by must be a whole number')
    this.count += by
    return { count: this.count }
  }
}
