// Route config marking read-only endpoints (dashboard, metrics) that the control API's
// token check lets through: its hook skips routes whose config has `public: true`.
declare module 'fastify' {
  interface FastifyContextConfig {
    /** readable without the API token; such a route never changes state */
    public?: boolean
  }
}

export const publicRouteConfig = { public: true } as const
