"""Domain services: the rules of the product. They take an AppContext and plain values,
never a request, and raise ApiError for anything a client may see."""
