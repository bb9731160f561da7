"""The parties' agents: the retailer's and each vendor's private cost model and the queries it answers."""
