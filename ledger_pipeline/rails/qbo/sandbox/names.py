"""Static vocabulary of the synthetic companies: names, chart of accounts, items, memos.

Names are a bijection of the object's Id onto word combinations, so DisplayName is unique per
realm (as QBO requires) without storing any string per object.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACES = (
    "Cedar", "Harbor", "Summit", "Granite", "Maple", "Riverbend", "Northgate", "Silverline", "Oakridge",
    "Pioneer", "Bayside", "Redwood", "Lakeshore", "Ironwood", "Prairie", "Keystone", "Blue Ridge",
    "Westfield", "Copper", "Evergreen", "Sunrise", "Highland", "Meadow", "Crescent", "Falcon", "Juniper",
    "Sterling", "Willow", "Canyon", "Atlas", "Beacon", "Coastal", "Frontier", "Golden", "Horizon",
    "Liberty", "Orchard", "Quarry", "Ridgeway", "Timber",
)
TRADES = (
    "Supply", "Electric", "Lumber", "Freight", "Printing", "Janitorial", "Hardware", "Roofing", "Paper",
    "Fuel", "Security", "Landscaping", "Plumbing Parts", "Office Goods", "Tile", "Glass", "Uniforms",
    "Signs", "Concrete", "Pest Control", "Rentals", "Catering", "Telecom", "Insurance", "Logistics",
    "Packaging", "Welding", "Steel", "Paint", "Auto Parts", "Waste Services", "Staffing", "Equipment",
    "Flooring", "Cabinetry", "Courier", "Bookkeeping", "Water", "HVAC", "Coffee",
)
SUFFIXES = ("Co.", "LLC", "Inc.", "Partners", "Group", "Ltd.", "& Sons", "Works")
GIVEN = (
    "Ava", "Ben", "Carmen", "Diego", "Elena", "Farah", "Gus", "Hana", "Ivan", "Jada", "Kofi", "Lena",
    "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wen", "Ximena",
    "Yusuf", "Zoe", "Aaron", "Bianca", "Caleb", "Dana", "Eli", "Fiona", "Grant", "Holly", "Isaac",
    "June", "Kai", "Lucia", "Milo", "Nadia",
)
FAMILY = (
    "Abbott", "Barnes", "Castillo", "Dunn", "Eriksen", "Fong", "Garcia", "Hughes", "Iqbal", "Jensen",
    "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Sato",
    "Thornton", "Ueda", "Vasquez", "Whitaker", "Xu", "Yilmaz", "Zeller", "Alvarez", "Brennan", "Chen",
    "Delacroix", "Ellis", "Fischer", "Gallagher", "Hoffman", "Ito", "Jovanovic", "Keller", "Larsen",
    "Mbeki", "Novak",
)
CUSTOMER_KINDS = ("Dental", "Cafe", "Properties", "Fitness", "Bistro", "Clinic", "Academy", "Studio",
                  "Realty", "Motors", "Outfitters", "Brewing")

ITEMS = (("1", "Services"), ("2", "Hours"), ("3", "Design"), ("4", "Installation"), ("5", "Materials"),
         ("6", "Consulting"), ("7", "Maintenance"), ("8", "Training"))
TERMS = (("1", 0), ("2", 15), ("3", 30), ("4", 60))  # SalesTermRef value, days until due
EXPENSE_MEMOS = ("Monthly service", "Parts and materials", "Job site supplies", "Delivery charge",
                 "Quarterly contract", "Emergency call-out", "Replacement parts", "Consumables")
SALES_MEMOS = ("Labor", "On-site work", "Project milestone", "Parts installed", "Hourly support",
               "Annual plan", "Inspection", "Rush order")
EDIT_NOTES = ("Corrected amount per vendor statement", "Updated due date", "Added PO reference",
              "Memo updated", "Reclassified after review", "Approved by owner", "Matched to statement")
SUB_ACCOUNT_SITES = ("Main Office", "Warehouse", "Field Crew", "Fleet", "North Branch", "South Branch",
                     "Workshop", "Showroom", "Remote Team", "Projects")


def _pick(object_id: int, sizes: tuple[int, ...], stride: int = 7919) -> tuple[int, list[int]]:
    """Map an Id (1-based) onto a unique combination of digits in the given bases, plus a lap number."""
    space = 1
    for size in sizes:
        space *= size
    lap, k = divmod(object_id - 1, space)
    k = (k * stride) % space
    digits = []
    for size in sizes:
        k, digit = divmod(k, size)
        digits.append(digit)
    return lap, digits


def vendor_name(object_id: int) -> str:
    lap, (a, b, c) = _pick(object_id, (len(PLACES), len(TRADES), len(SUFFIXES)))
    name = f"{PLACES[a]} {TRADES[b]} {SUFFIXES[c]}"
    return f"{name} {lap + 1}" if lap else name


def person_name(object_id: int) -> tuple[str, str]:
    lap, (a, b) = _pick(object_id, (len(GIVEN), len(FAMILY)), stride=577)
    family = FAMILY[b] if not lap else f"{FAMILY[b]}-{lap + 1}"
    return GIVEN[a], family


def customer_company(object_id: int) -> str:
    lap, (a, b) = _pick(object_id, (len(PLACES), len(CUSTOMER_KINDS)), stride=101)
    name = f"{PLACES[a]} {CUSTOMER_KINDS[b]}"
    return f"{name} {lap + 1}" if lap else name


def slug(text: str) -> str:
    return "".join(ch for ch in text.lower().replace(" ", "-") if ch.isalnum() or ch == "-").strip("-")


@dataclass(frozen=True)
class AccountDef:
    """One row of a company's chart of accounts (static: accounts are never created after genesis)."""

    id: int
    name: str
    account_type: str
    sub_type: str
    classification: str
    parent: int | None = None
    system: bool = False

    @property
    def fully_qualified_name(self) -> str:
        return self.name if self.parent is None else f"{BASE_CHART[self.parent - 1][0]}:{self.name}"


# name, AccountType, AccountSubType, Classification, system (never deactivated, used by every company)
BASE_CHART = (
    ("Checking", "Bank", "Checking", "Asset", True),
    ("Savings", "Bank", "Savings", "Asset", False),
    ("Undeposited Funds", "Other Current Asset", "UndepositedFunds", "Asset", True),
    ("Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable", "Asset", True),
    ("Inventory Asset", "Other Current Asset", "Inventory", "Asset", False),
    ("Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability", True),
    ("Credit Card", "Credit Card", "CreditCard", "Liability", False),
    ("Opening Balance Equity", "Equity", "OpeningBalanceEquity", "Equity", True),
    ("Retained Earnings", "Equity", "RetainedEarnings", "Equity", True),
    ("Sales of Product Income", "Income", "SalesOfProductIncome", "Revenue", True),
    ("Services", "Income", "ServiceFeeIncome", "Revenue", True),
    ("Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs", "Expense", False),
    ("Advertising", "Expense", "AdvertisingPromotional", "Expense", False),
    ("Bank Charges", "Expense", "BankCharges", "Expense", False),
    ("Insurance", "Expense", "Insurance", "Expense", False),
    ("Legal & Professional Fees", "Expense", "LegalProfessionalFees", "Expense", False),
    ("Meals and Entertainment", "Expense", "EntertainmentMeals", "Expense", False),
    ("Office Expenses", "Expense", "OfficeGeneralAdministrativeExpenses", "Expense", False),
    ("Rent or Lease", "Expense", "RentOrLeaseOfBuildings", "Expense", False),
    ("Repair & Maintenance", "Expense", "RepairMaintenance", "Expense", False),
    ("Supplies", "Expense", "SuppliesMaterials", "Expense", False),
    ("Travel", "Expense", "Travel", "Expense", False),
    ("Utilities", "Expense", "Utilities", "Expense", False),
    ("Subcontractors", "Expense", "CostOfLabor", "Expense", False),
    ("Automobile", "Expense", "Auto", "Expense", False),
    ("Taxes & Licenses", "Expense", "TaxesPaid", "Expense", False),
)
CHECKING, UNDEPOSITED, AR_ACCOUNT, AP_ACCOUNT = 1, 3, 4, 6
# The liability account the corporate card spend (Ramp) is booked to. It is not the base chart's generic
# "Credit Card": renaming that one would change its payload. It comes last, after the sub-accounts, so that no
# other account's Id moves.
CARD_ACCOUNT = ("Ramp Card", "Credit Card", "CreditCard", "Liability", True)
# The expense account a card Purchase is booked to, by the merchant's QBO expense kind (world/card_spend.py).
CARD_EXPENSE_KINDS = {"software": "Office Expenses", "travel": "Travel", "office": "Office Expenses",
                      "auto": "Automobile", "meals": "Meals and Entertainment", "shipping": "Office Expenses",
                      "supplies": "Supplies", "advertising": "Advertising"}  # fmt: skip
CARD_EXPENSE_ACCOUNTS = {kind: [row[0] for row in BASE_CHART].index(name) + 1
                         for kind, name in CARD_EXPENSE_KINDS.items()}


def card_account(account_id: int) -> AccountDef:
    """The Ramp card's liability account, with the Id after the generated chart's last."""
    name, account_type, sub_type, classification, system = CARD_ACCOUNT
    return AccountDef(account_id, name, account_type, sub_type, classification, system=system)


def chart_of_accounts(count: int) -> tuple[AccountDef, ...]:
    """The base chart plus expense sub-accounts ("Utilities:Warehouse") up to `count` accounts."""
    rows = [AccountDef(i, n, t, s, c, system=sys) for i, (n, t, s, c, sys) in enumerate(BASE_CHART, start=1)]
    parents = [row for row in rows if row.classification == "Expense"]
    n = 0
    while len(rows) < count:
        parent = parents[n % len(parents)]
        lap, site = divmod(n // len(parents), len(SUB_ACCOUNT_SITES))
        name = SUB_ACCOUNT_SITES[site] + (f" {lap + 1}" if lap else "")
        rows.append(AccountDef(len(rows) + 1, name, parent.account_type, parent.sub_type,
                               parent.classification, parent=parent.id))
        n += 1
    return tuple(rows)
