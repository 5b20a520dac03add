// A cell written in TypeScript that imports an npm package: `stem publish` bundles both
// into one module with esbuild. slugify is plain JavaScript with no Node built-ins, which
// is what a cell can use (there is no Node API inside a cell).
// `stem/cell` types the `stem` global and the route argument (types/cell.d.ts).
import slugify from 'slugify'
import type { HttpRequest } from 'stem/cell'

interface Greeting {
  message: string
  slug: string
  times: number
}

export default class Greeter {
  greeted: Record<string, number> = {}

  greet ({ params, query }: HttpRequest<{ name: string }>): Greeting {
    const name = params.name.trim()
    if (name === '') throw stem.error(400, 'name must not be empty')
    const slug = slugify(name, { lower: true, strict: true })
    this.greeted[slug] = (this.greeted[slug] ?? 0) + 1
    const greeting = query.lang === 'fr' ? 'Bonjour' : 'Hello'
    return { message: `${greeting}, ${name}!`, slug, times: this.greeted[slug] }
  }

  stats (): Record<string, number> {
    return this.greeted
  }
}
