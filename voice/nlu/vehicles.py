"""Common makes and models on North American roads, with the body type a caller might use for them.

A shop's own work orders add to these (see voice.nlu.vocab); this list lets the receptionist recognise
"my hunda sivic" or "the F one fifty" before any work order mentions one, and lets "the truck" pick the
F-150 out of a caller's two vehicles.
"""

from __future__ import annotations

from voice.nlu.text import compact, word_set

TRUCK, SUV, VAN, CAR = "truck", "suv", "van", "car"

# Spoken or written names → the make as shops record it.
MAKE_ALIASES = {
    "chevy": "Chevrolet",
    "chevrolet": "Chevrolet",
    "chev": "Chevrolet",
    "vw": "Volkswagen",
    "volkswagon": "Volkswagen",
    "volkswagen": "Volkswagen",
    "volks": "Volkswagen",
    "mercedes": "Mercedes-Benz",
    "mercedesbenz": "Mercedes-Benz",
    "benz": "Mercedes-Benz",
    "beemer": "BMW",
    "bimmer": "BMW",
    "bmw": "BMW",
    "caddy": "Cadillac",
    "caddie": "Cadillac",
    "landrover": "Land Rover",
    "alfaromeo": "Alfa Romeo",
    "alfa": "Alfa Romeo",
    "gmc": "GMC",
    "dodgeram": "Ram",
}

MAKES = [
    "Acura", "Alfa Romeo", "Audi", "BMW", "Buick", "Cadillac", "Chevrolet", "Chrysler", "Dodge", "Fiat", "Ford",
    "Genesis", "GMC", "Honda", "Hummer", "Hyundai", "Infiniti", "Isuzu", "Jaguar", "Jeep", "Kia", "Land Rover",
    "Lexus", "Lincoln", "Mazda", "Mercedes-Benz", "Mercury", "Mini", "Mitsubishi", "Nissan", "Polestar", "Pontiac",
    "Porsche", "Ram", "Rivian", "Saab", "Saturn", "Scion", "Subaru", "Suzuki", "Tesla", "Toyota", "Volkswagen",
    "Volvo",
]  # fmt: skip

# (make, model, body type)
MODELS: list[tuple[str, str, str]] = [
    ("Toyota", "Camry", CAR), ("Toyota", "Corolla", CAR), ("Toyota", "Prius", CAR), ("Toyota", "Avalon", CAR),
    ("Toyota", "Yaris", CAR), ("Toyota", "RAV4", SUV), ("Toyota", "Highlander", SUV), ("Toyota", "4Runner", SUV),
    ("Toyota", "Sequoia", SUV), ("Toyota", "Venza", SUV), ("Toyota", "C-HR", SUV), ("Toyota", "Land Cruiser", SUV),
    ("Toyota", "Tacoma", TRUCK), ("Toyota", "Tundra", TRUCK), ("Toyota", "Sienna", VAN),
    ("Honda", "Civic", CAR), ("Honda", "Accord", CAR), ("Honda", "Fit", CAR), ("Honda", "Insight", CAR),
    ("Honda", "CR-V", SUV), ("Honda", "HR-V", SUV), ("Honda", "Pilot", SUV), ("Honda", "Passport", SUV),
    ("Honda", "Odyssey", VAN), ("Honda", "Ridgeline", TRUCK),
    ("Ford", "F-150", TRUCK), ("Ford", "F-250", TRUCK), ("Ford", "F-350", TRUCK), ("Ford", "Ranger", TRUCK),
    ("Ford", "Maverick", TRUCK), ("Ford", "Escape", SUV), ("Ford", "Explorer", SUV), ("Ford", "Expedition", SUV),
    ("Ford", "Edge", SUV), ("Ford", "Bronco", SUV), ("Ford", "Flex", SUV), ("Ford", "Mustang", CAR),
    ("Ford", "Fusion", CAR), ("Ford", "Focus", CAR), ("Ford", "Fiesta", CAR), ("Ford", "Taurus", CAR),
    ("Ford", "Transit", VAN), ("Ford", "Econoline", VAN),
    ("Chevrolet", "Silverado", TRUCK), ("Chevrolet", "Colorado", TRUCK), ("Chevrolet", "Malibu", CAR),
    ("Chevrolet", "Impala", CAR), ("Chevrolet", "Cruze", CAR), ("Chevrolet", "Camaro", CAR),
    ("Chevrolet", "Corvette", CAR), ("Chevrolet", "Spark", CAR), ("Chevrolet", "Sonic", CAR),
    ("Chevrolet", "Bolt", CAR), ("Chevrolet", "Volt", CAR), ("Chevrolet", "Equinox", SUV),
    ("Chevrolet", "Traverse", SUV), ("Chevrolet", "Tahoe", SUV), ("Chevrolet", "Suburban", SUV),
    ("Chevrolet", "Trailblazer", SUV), ("Chevrolet", "Blazer", SUV), ("Chevrolet", "Trax", SUV),
    ("Chevrolet", "Express", VAN),
    ("GMC", "Sierra", TRUCK), ("GMC", "Canyon", TRUCK), ("GMC", "Yukon", SUV), ("GMC", "Acadia", SUV),
    ("GMC", "Terrain", SUV), ("GMC", "Savana", VAN),
    ("Ram", "1500", TRUCK), ("Ram", "2500", TRUCK), ("Ram", "3500", TRUCK), ("Ram", "ProMaster", VAN),
    ("Dodge", "Charger", CAR), ("Dodge", "Challenger", CAR), ("Dodge", "Dart", CAR), ("Dodge", "Durango", SUV),
    ("Dodge", "Journey", SUV), ("Dodge", "Grand Caravan", VAN), ("Dodge", "Dakota", TRUCK),
    ("Jeep", "Wrangler", SUV), ("Jeep", "Grand Cherokee", SUV), ("Jeep", "Cherokee", SUV), ("Jeep", "Compass", SUV),
    ("Jeep", "Renegade", SUV), ("Jeep", "Liberty", SUV), ("Jeep", "Patriot", SUV), ("Jeep", "Gladiator", TRUCK),
    ("Chrysler", "Pacifica", VAN), ("Chrysler", "Town and Country", VAN), ("Chrysler", "300", CAR),
    ("Nissan", "Altima", CAR), ("Nissan", "Sentra", CAR), ("Nissan", "Maxima", CAR), ("Nissan", "Versa", CAR),
    ("Nissan", "Leaf", CAR), ("Nissan", "Rogue", SUV), ("Nissan", "Murano", SUV), ("Nissan", "Pathfinder", SUV),
    ("Nissan", "Armada", SUV), ("Nissan", "Kicks", SUV), ("Nissan", "Frontier", TRUCK), ("Nissan", "Titan", TRUCK),
    ("Nissan", "Quest", VAN),
    ("Hyundai", "Elantra", CAR), ("Hyundai", "Sonata", CAR), ("Hyundai", "Accent", CAR), ("Hyundai", "Ioniq", CAR),
    ("Hyundai", "Tucson", SUV), ("Hyundai", "Santa Fe", SUV), ("Hyundai", "Kona", SUV), ("Hyundai", "Palisade", SUV),
    ("Hyundai", "Santa Cruz", TRUCK),
    ("Kia", "Optima", CAR), ("Kia", "K5", CAR), ("Kia", "Forte", CAR), ("Kia", "Rio", CAR), ("Kia", "Soul", CAR),
    ("Kia", "Stinger", CAR), ("Kia", "Sorento", SUV), ("Kia", "Sportage", SUV), ("Kia", "Telluride", SUV),
    ("Kia", "Seltos", SUV), ("Kia", "Niro", SUV), ("Kia", "Carnival", VAN), ("Kia", "Sedona", VAN),
    ("Subaru", "Outback", SUV), ("Subaru", "Forester", SUV), ("Subaru", "Crosstrek", SUV), ("Subaru", "Ascent", SUV),
    ("Subaru", "Impreza", CAR), ("Subaru", "Legacy", CAR), ("Subaru", "WRX", CAR),
    ("Mazda", "Mazda3", CAR), ("Mazda", "Mazda6", CAR), ("Mazda", "CX-5", SUV), ("Mazda", "CX-9", SUV),
    ("Mazda", "CX-30", SUV), ("Mazda", "Miata", CAR),
    ("Volkswagen", "Jetta", CAR), ("Volkswagen", "Passat", CAR), ("Volkswagen", "Golf", CAR),
    ("Volkswagen", "Beetle", CAR), ("Volkswagen", "Tiguan", SUV), ("Volkswagen", "Atlas", SUV),
    ("Volkswagen", "Taos", SUV),
    ("BMW", "3 Series", CAR), ("BMW", "5 Series", CAR), ("BMW", "X1", SUV), ("BMW", "X3", SUV), ("BMW", "X5", SUV),
    ("Mercedes-Benz", "C-Class", CAR), ("Mercedes-Benz", "E-Class", CAR), ("Mercedes-Benz", "GLC", SUV),
    ("Mercedes-Benz", "GLE", SUV), ("Mercedes-Benz", "Sprinter", VAN),
    ("Audi", "A4", CAR), ("Audi", "A6", CAR), ("Audi", "Q3", SUV), ("Audi", "Q5", SUV), ("Audi", "Q7", SUV),
    ("Lexus", "ES", CAR), ("Lexus", "IS", CAR), ("Lexus", "RX", SUV), ("Lexus", "NX", SUV), ("Lexus", "GX", SUV),
    ("Acura", "TLX", CAR), ("Acura", "ILX", CAR), ("Acura", "Integra", CAR), ("Acura", "MDX", SUV),
    ("Acura", "RDX", SUV),
    ("Tesla", "Model 3", CAR), ("Tesla", "Model S", CAR), ("Tesla", "Model Y", SUV), ("Tesla", "Model X", SUV),
    ("Buick", "Enclave", SUV), ("Buick", "Encore", SUV), ("Buick", "LaCrosse", CAR),
    ("Cadillac", "Escalade", SUV), ("Cadillac", "XT5", SUV), ("Cadillac", "CTS", CAR),
    ("Lincoln", "Navigator", SUV), ("Lincoln", "Aviator", SUV), ("Lincoln", "MKZ", CAR),
    ("Volvo", "XC90", SUV), ("Volvo", "XC60", SUV), ("Volvo", "S60", CAR),
    ("Mitsubishi", "Outlander", SUV), ("Mitsubishi", "Lancer", CAR), ("Mitsubishi", "Mirage", CAR),
    ("Infiniti", "Q50", CAR), ("Infiniti", "QX60", SUV), ("Mini", "Cooper", CAR),
]  # fmt: skip

# Spoken shapes of model names a recogniser produces (after numbers become digits).
MODEL_ALIASES = {
    "f150": "F-150",
    "f 150": "F-150",
    "effone50": "F-150",
    "f250": "F-250",
    "f350": "F-350",
    "rav": "RAV4",
    "4runner": "4Runner",
    "forerunner": "4Runner",
    "crv": "CR-V",
    "hrv": "HR-V",
    "chr": "C-HR",
    "mazda3": "Mazda3",
    "mazda6": "Mazda6",
    "miata": "Miata",
    "mx5": "Miata",
    "3series": "3 Series",
    "5series": "5 Series",
    "cclass": "C-Class",
    "eclass": "E-Class",
    "model3": "Model 3",
    "modely": "Model Y",
    "models": "Model S",
    "modelx": "Model X",
    "caravan": "Grand Caravan",
    "achord": "Accord",
    "seevic": "Civic",
    "silverato": "Silverado",
}

# Body words a caller uses for a vehicle → body type ("car" alone means any vehicle, so it is not here).
BODY_WORDS = {
    "truck": TRUCK,
    "pickup": TRUCK,
    "suv": SUV,
    "crossover": SUV,
    "van": VAN,
    "minivan": VAN,
    "sedan": CAR,
    "coupe": CAR,
    "hatchback": CAR,
    "hatch": CAR,
    "convertible": CAR,
}

# Model names that are also everyday words: taken as a model only when something says "vehicle"
# nearby (a make, a year, "my/the", or the receptionist just asked which vehicle).
AMBIGUOUS_MODELS = frozenset(
    compact(m)
    for m in word_set(
        """Fit Pilot Passport Insight Edge Escape Explorer Focus Flex Transit Express Spark Sonic Bolt Volt
    Journey Compass Liberty Patriot Leaf Rogue Quest Accent Soul Legacy Ascent Golf Beetle Atlas Sierra Colorado
    Canyon Terrain Ranger Frontier Titan Charger Challenger Dart Mustang Cooper Mirage Encore Aviator Navigator
    Traverse Fusion Integra Gladiator Renegade Outback Forte Rio"""
    )
)


# Numeric or letter-code models ("300", "1500", "ES", "X3") need their make next to them.
def needs_make(model_key: str) -> bool:
    return model_key.isdigit() or len(model_key) <= 2
